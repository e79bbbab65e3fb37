package images

import (
	"context"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/chunks"
	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

// ListImages lists the images. A filter names one image by any of its
// references (ID, ID prefix, name:tag, name@digest), resolved as
// ImageStatus resolves it; an unknown one gives an empty list.
func (s *Server) ListImages(ctx context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if ref := r.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := s.images.Get(ctx, ref)
		switch {
		case errdefs.IsNotFound(err):
			return &runtimeapi.ListImagesResponse{}, nil
		case err != nil:
			return nil, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{toCRIImage(img)}}, nil
	}
	imgs, err := s.images.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, toCRIImage(img))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// StreamImages is ListImages in chunks.
func (s *Server) StreamImages(r *runtimeapi.StreamImagesRequest, srv grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(srv.Context(), &runtimeapi.ListImagesRequest{Filter: r.GetFilter()})
	if err != nil {
		return err
	}
	return chunks.Send(resp.GetImages(), func(c []*runtimeapi.Image) *runtimeapi.StreamImagesResponse {
		return &runtimeapi.StreamImagesResponse{Images: c}
	}, srv.Send)
}
