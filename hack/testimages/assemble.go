package main

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// assemble makes the image (OCI media types when it goes up inside an
// index, Docker schema 2 otherwise, so pulls see both kinds).
func assemble(sp spec, layers []v1.Layer) (remote.Taggable, error) {
	base := empty.Image
	if sp.index {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l}
		if sp.index {
			adds[i].MediaType = types.OCILayer
		}
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = "amd64"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = sp.config
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	if !sp.index {
		return img, nil
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx, mutate.IndexAddendum{
		Add: plainImage{img},
		Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: "linux", Architecture: "amd64"},
		},
	}), nil
}

// digestOf is the manifest (or index) digest a Taggable is pushed under.
func digestOf(t remote.Taggable) (v1.Hash, error) {
	switch x := t.(type) {
	case v1.Image:
		return x.Digest()
	case v1.ImageIndex:
		return x.Digest()
	}
	return v1.Hash{}, fmt.Errorf("unexpected %T", t)
}

// plainImage keeps go-containerregistry from writing an artifactType into
// the index entry (it derives one from the config media type): real image
// indexes carry none, and a runtime may take an entry with one for a
// non-image artifact.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }
