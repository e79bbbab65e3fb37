package images

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// RemoveImage removes an image by ID or by name@digest (all its names
// go), or one of its tags (the image goes with its last tag unless it was
// pulled by digest; see image.Service.Remove). An absent image is success:
// RemoveImage is idempotent (the CRI contract, critest idempotence.go).
func (s *Server) RemoveImage(ctx context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	err := s.images.Remove(ctx, ref)
	switch {
	case errdefs.IsNotFound(err):
		klog.FromContext(ctx).V(4).Info("Image to remove was already gone", "image", ref)
	case err != nil:
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}
