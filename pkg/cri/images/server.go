// Package images serves the CRI ImageService over the image service
// (pkg/image): pull, status, list, remove and the image filesystem's
// usage, with the CRI's contract (an image is found by ID, ID prefix,
// name:tag or name@digest; an absent image is an empty status; removal is
// idempotent). The facade registers it next to its RuntimeService, behind
// the same interceptors, as containerd's CRI plugin does.
package images

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// Store is what the ImageService needs of the image service.
type Store interface {
	Pull(ctx context.Context, ref string, auth *image.Auth) (image.Image, error)
	Get(ctx context.Context, ref string) (image.Image, error)
	List(ctx context.Context) ([]image.Image, error)
	Remove(ctx context.Context, ref string) error
	FsInfo(ctx context.Context) (usedBytes, inodesUsed uint64, mountpoint string, err error)
}

// Server serves the CRI ImageService.
type Server struct {
	runtimeapi.UnimplementedImageServiceServer

	images Store
}

var _ runtimeapi.ImageServiceServer = (*Server)(nil)

// New serves the images of images.
func New(images Store) *Server { return &Server{images: images} }
