package images

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// PullImage pulls an image and answers with its ID, which is what
// ImageStatus reports as Id and what containers report as image_id (critest
// image_id_consistency compares them). The request carries credentials: it
// is never logged, only the image reference is.
func (s *Server) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	logger := klog.FromContext(ctx).WithValues("image", ref)
	ctx = klog.NewContext(ctx, logger)
	logger.V(2).Info("Pulling image")
	img, err := s.images.Pull(ctx, ref, toImageAuth(r.GetAuth()))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// toImageAuth converts the CRI credentials; none gives nil.
func toImageAuth(a *runtimeapi.AuthConfig) *image.Auth {
	if a == nil {
		return nil
	}
	return &image.Auth{
		Username:      a.GetUsername(),
		Password:      a.GetPassword(),
		Auth:          a.GetAuth(),
		ServerAddress: a.GetServerAddress(),
		IdentityToken: a.GetIdentityToken(),
		RegistryToken: a.GetRegistryToken(),
	}
}
