package images

import (
	"context"
	"encoding/json"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
	"github.com/cri-runtime/cri-runtime/pkg/image"
)

// ImageStatus reports one image, found by ID, ID prefix, name:tag or
// name@digest. An absent image is not an error: the response has no image
// (the CRI contract; the kubelet pulls on it).
func (s *Server) ImageStatus(ctx context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	img, err := s.images.Get(ctx, ref)
	switch {
	case errdefs.IsNotFound(err):
		return &runtimeapi.ImageStatusResponse{}, nil
	case err != nil:
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if r.GetVerbose() {
		info, err := verboseImageInfo(img)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// toCRIImage converts an image to its CRI form. The user of its config
// becomes uid when its user part is numeric and username otherwise.
func toCRIImage(img image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        uint64(max(img.Size, 0)),
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
		Pinned:      img.Pinned,
	}
	uid, username := image.ParseUser(img.Config.User)
	if uid != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *uid}
	}
	out.Username = username
	return out
}

// verboseInfo is ImageStatus's verbose "info", shaped like containerd's
// (chainID, imageSpec) plus every layer's chain ID.
type verboseInfo struct {
	ChainID        string          `json:"chainID"`
	ChainIDs       []string        `json:"chainIDs"`
	ManifestDigest string          `json:"manifestDigest,omitempty"`
	ImageSpec      json.RawMessage `json:"imageSpec"`
}

func verboseImageInfo(img image.Image) (string, error) {
	v := verboseInfo{ChainIDs: img.ChainIDs, ManifestDigest: img.ManifestDigest, ImageSpec: img.RawConfig}
	if n := len(img.ChainIDs); n > 0 {
		v.ChainID = img.ChainIDs[n-1]
	}
	if len(v.ImageSpec) == 0 || !json.Valid(v.ImageSpec) {
		v.ImageSpec = nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("verbose info of image %s: %v: %w", img.ID, err, errdefs.ErrInternal)
	}
	return string(b), nil
}
