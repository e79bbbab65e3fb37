package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// libDirs are where the host's loader finds libraries without ld.so.cache
// (Debian's multiarch and default directories), in its order.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// sharedLibs lists the absolute paths of the dynamic loader and every
// library bin needs, transitively (DT_NEEDED, found in libDirs), as ldd
// would resolve them on this host but without running a program per
// file. Nil for a static program or a file that is not ELF (a script).
func sharedLibs(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, nil // not ELF: a script
		}
		return nil, err
	}
	defer f.Close()
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("%s: interpreter: %w", bin, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return nil, nil // static
	}
	libs := []string{interp}
	seen := map[string]bool{}
	var walk func(*elf.File, string) error
	walk = func(ef *elf.File, who string) error {
		needed, err := ef.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", who, err)
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			found := ""
			for _, d := range libDirs {
				if _, err := os.Stat(filepath.Join(d, n)); err == nil {
					found = filepath.Join(d, n)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which is in none of %v", who, n, libDirs)
			}
			if found == interp || filepath.Base(found) == filepath.Base(interp) {
				continue // the loader, already listed
			}
			libs = append(libs, found)
			lf, err := elf.Open(found)
			if err != nil {
				return err
			}
			err = walk(lf, found)
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(f, bin); err != nil {
		return nil, err
	}
	return libs, nil
}

// hostProgram adds the host program src at p, with the host's shared
// libraries ldd resolves for it at their host paths (where the glibc
// loader looks for them without a cache). map renames library paths (nil:
// kept).
func (l *layer) hostProgram(p, src string, mapPath func(string) string) error {
	if mapPath == nil {
		mapPath = func(s string) string { return s }
	}
	if err := l.copyFile(mapPath(p), 0o755, src); err != nil {
		return err
	}
	libs, err := sharedLibs(src)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if l.has(mapPath(lib)) {
			continue
		}
		if err := l.copyFile(mapPath(lib), 0o755, lib); err != nil {
			return err
		}
	}
	return nil
}
