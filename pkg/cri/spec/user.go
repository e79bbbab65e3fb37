package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/errdefs"
)

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// userDB is the rootfs's /etc/passwd and /etc/group; either may be absent.
type userDB struct {
	passwd []passwdEntry
	groups []groupEntry
}

// loadUserDB reads /etc/passwd and /etc/group inside rootfs (see
// readRootFile); missing files are empty databases.
func loadUserDB(rootfs string) (*userDB, error) {
	db := &userDB{}
	data, err := readRootFile(rootfs, "/etc/passwd")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	db.passwd = parsePasswd(string(data))
	data, err = readRootFile(rootfs, "/etc/group")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	db.groups = parseGroup(string(data))
	return db, nil
}

// parsePasswd parses name:password:uid:gid:gecos:home:shell lines,
// skipping comments and malformed lines.
func parsePasswd(data string) []passwdEntry {
	var out []passwdEntry
	for _, line := range strings.Split(data, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 4 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid})
	}
	return out
}

// parseGroup parses name:password:gid:member,member lines.
func parseGroup(data string) []groupEntry {
	var out []groupEntry
	for _, line := range strings.Split(data, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 3 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, ok := parseID(f[2])
		if !ok {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}

// parseID parses a decimal uid/gid.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// resolve resolves "user", "user:group", with names or numbers, the way
// runc and containerd do: a numeric user absent from /etc/passwd gets gid
// 0; a name must exist; an explicit group replaces the primary gid. It
// returns the user's name ("" if unknown) for the group-membership lookup.
func (db *userDB) resolve(userstr string) (uid, gid uint32, name string, err error) {
	userPart, groupPart, hasGroup := strings.Cut(userstr, ":")
	if userPart == "" || (hasGroup && groupPart == "") {
		return 0, 0, "", fmt.Errorf("user %q is malformed: %w", userstr, errdefs.ErrInvalidArgument)
	}
	if n, ok := parseID(userPart); ok {
		uid = n
		for _, e := range db.passwd {
			if e.uid == n {
				gid, name = e.gid, e.name
				break
			}
		}
	} else {
		found := false
		for _, e := range db.passwd {
			if e.name == userPart {
				uid, gid, name, found = e.uid, e.gid, e.name, true
				break
			}
		}
		if !found {
			return 0, 0, "", fmt.Errorf("user %q: no matching entries in the image's /etc/passwd: %w", userPart, errdefs.ErrInvalidArgument)
		}
	}
	if !hasGroup {
		return uid, gid, name, nil
	}
	if n, ok := parseID(groupPart); ok {
		return uid, n, name, nil
	}
	for _, g := range db.groups {
		if g.name == groupPart {
			return uid, g.gid, name, nil
		}
	}
	return 0, 0, "", fmt.Errorf("group %q: no matching entries in the image's /etc/group: %w", groupPart, errdefs.ErrInvalidArgument)
}

// memberOf lists the gids of the groups that name user as a member.
func (db *userDB) memberOf(user string) []uint32 {
	if user == "" {
		return nil
	}
	var out []uint32
	for _, g := range db.groups {
		for _, m := range g.members {
			if m == user {
				out = append(out, g.gid)
				break
			}
		}
	}
	return out
}

// userRequest is what decides the process user, from either security
// context.
type userRequest struct {
	field        string // CRI field prefix for errors
	userstr      string // "" means root
	policy       runtimeapi.SupplementalGroupsPolicy
	supplemental []int64
}

// resolveUser turns a userRequest into the process user. AdditionalGids
// starts with the primary gid (as containerd does), then the image's
// /etc/group memberships (Merge policy only), then the CRI
// supplemental_groups, without duplicates.
func resolveUser(rootfs string, req userRequest) (specs.User, error) {
	switch req.policy {
	case runtimeapi.SupplementalGroupsPolicy_Merge, runtimeapi.SupplementalGroupsPolicy_Strict:
	default:
		return specs.User{}, fmt.Errorf("%s.supplemental_groups_policy %d is unknown: %w", req.field, req.policy, errdefs.ErrInvalidArgument)
	}
	userstr := req.userstr
	if userstr == "" {
		userstr = "0"
	}
	db, err := loadUserDB(rootfs)
	if err != nil {
		return specs.User{}, err
	}
	uid, gid, name, err := db.resolve(userstr)
	if err != nil {
		return specs.User{}, fmt.Errorf("%s: %w", req.field, err)
	}
	groups := []uint32{gid}
	if req.policy == runtimeapi.SupplementalGroupsPolicy_Merge {
		groups = append(groups, db.memberOf(name)...)
	}
	for i, g := range req.supplemental {
		if g < 0 || g > math.MaxUint32 {
			return specs.User{}, fmt.Errorf("%s.supplemental_groups[%d] %d is out of range: %w", req.field, i, g, errdefs.ErrInvalidArgument)
		}
		groups = append(groups, uint32(g))
	}
	return specs.User{UID: uid, GID: gid, AdditionalGids: dedupIDs(groups)}, nil
}

func dedupIDs(ids []uint32) []uint32 {
	seen := make(map[uint32]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// criUserString builds "user[:group]" from run_as_user / run_as_username /
// run_as_group; "" when none is set. The CRI requires an error for a group
// without a user, and for both a uid and a name.
func criUserString(field string, uid *runtimeapi.Int64Value, username string, gid *runtimeapi.Int64Value) (string, error) {
	if uid != nil && username != "" {
		return "", fmt.Errorf("%s: run_as_user and run_as_username are both set: %w", field, errdefs.ErrInvalidArgument)
	}
	var user string
	switch {
	case username != "":
		if strings.ContainsAny(username, ":\n") {
			return "", fmt.Errorf("%s.run_as_username %q is malformed: %w", field, username, errdefs.ErrInvalidArgument)
		}
		user = username
	case uid != nil:
		if uid.GetValue() < 0 || uid.GetValue() > math.MaxUint32 {
			return "", fmt.Errorf("%s.run_as_user %d is out of range: %w", field, uid.GetValue(), errdefs.ErrInvalidArgument)
		}
		user = strconv.FormatInt(uid.GetValue(), 10)
	}
	if gid == nil {
		return user, nil
	}
	if user == "" {
		return "", fmt.Errorf("%s.run_as_group is set without run_as_user or run_as_username: %w", field, errdefs.ErrInvalidArgument)
	}
	if gid.GetValue() < 0 || gid.GetValue() > math.MaxUint32 {
		return "", fmt.Errorf("%s.run_as_group %d is out of range: %w", field, gid.GetValue(), errdefs.ErrInvalidArgument)
	}
	return user + ":" + strconv.FormatInt(gid.GetValue(), 10), nil
}

// WithContainerUser sets process.user: the security context's run_as_*
// override the image's User; names are resolved in rootfs.
func WithContainerUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) SpecOpt {
	return func(s *specs.Spec) error {
		const field = "container.linux.security_context"
		userstr, err := criUserString(field, sc.GetRunAsUser(), sc.GetRunAsUsername(), sc.GetRunAsGroup())
		if err != nil {
			return err
		}
		req := userRequest{field: field, userstr: userstr, policy: sc.GetSupplementalGroupsPolicy(), supplemental: sc.GetSupplementalGroups()}
		if userstr == "" {
			req.field, req.userstr = "image user", imageUser
		}
		u, err := resolveUser(rootfs, req)
		if err != nil {
			return err
		}
		ensureProcess(s)
		s.Process.User = u
		return nil
	}
}

// WithSandboxUser sets the pause process's user from the sandbox security
// context (root by default).
func WithSandboxUser(rootfs string, sc *runtimeapi.LinuxSandboxSecurityContext) SpecOpt {
	return func(s *specs.Spec) error {
		const field = "sandbox.linux.security_context"
		userstr, err := criUserString(field, sc.GetRunAsUser(), "", sc.GetRunAsGroup())
		if err != nil {
			return err
		}
		u, err := resolveUser(rootfs, userRequest{field: field, userstr: userstr,
			policy: sc.GetSupplementalGroupsPolicy(), supplemental: sc.GetSupplementalGroups()})
		if err != nil {
			return err
		}
		ensureProcess(s)
		s.Process.User = u
		return nil
	}
}
