package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultConfName is the file WriteDefaultConfig writes.
const DefaultConfName = "10-cri-runtime.conflist"

// DefaultConfList is the network a node gets when conf_dir is empty: a
// bridge cri0 with host-local IPAM on 10.99.0.0/16 (10.88.0.0/16 is taken
// by podman's and containerd's defaults, which may share the host),
// masquerading and hairpin on, hostPorts through portmap. The same bytes
// are shipped as hack/cni/10-cri-runtime.conflist (a test keeps them equal).
// cniVersion 1.0.0 is the newest version Debian 12's plugins (1.1.1) speak.
const DefaultConfList = `{
  "cniVersion": "1.0.0",
  "name": "cri-runtime",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cri0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [{ "subnet": "10.99.0.0/16" }]
        ],
        "routes": [
          { "dst": "0.0.0.0/0" }
        ]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    },
    {
      "type": "loopback"
    }
  ]
}
`

// WriteDefaultConfig writes DefaultConfList to dir/DefaultConfName when dir
// holds no CNI config yet; an existing config, whatever its name, is left
// alone. It creates dir and writes atomically (temp file and rename), so a
// Manager never loads a half-written file.
func WriteDefaultConfig(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create cni conf dir: %w", err)
	}
	w := confWatcher{dir: dir}
	files, _, err := w.scan()
	if err != nil {
		return fmt.Errorf("read cni conf dir: %w", err)
	}
	if len(files) > 0 {
		return nil
	}
	tmp, err := os.CreateTemp(dir, ".cri-runtime-*.tmp")
	if err != nil {
		return fmt.Errorf("write default cni config: %w", err)
	}
	_, werr := tmp.WriteString(DefaultConfList)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write default cni config: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, DefaultConfName)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write default cni config: %w", err)
	}
	return nil
}
