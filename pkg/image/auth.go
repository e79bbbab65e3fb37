package image

import (
	"github.com/google/go-containerregistry/pkg/authn"
)

// Auth is the credentials of one pull (the CRI AuthConfig). It is never
// logged.
type Auth struct {
	Username      string
	Password      string
	Auth          string // base64 "username:password"
	IdentityToken string
	RegistryToken string
	// ServerAddress, when set, is the registry these credentials are for;
	// they are then not sent to mirrors of another name.
	ServerAddress string
}

func (a *Auth) empty() bool {
	return a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "")
}

// authenticator picks the credentials for host when pulling from domain:
// a config entry of a mirror host wins for that mirror; the request's
// credentials go to the upstream host, and to mirrors when they are not
// bound to a server address; the upstream's config entry is last.
func (s *Service) authenticator(host, domain string, a *Auth) authn.Authenticator {
	if host != domain && s.registry().isServer(host, domain) {
		host = domain // a hosts.toml's server is the upstream under another name
	}
	fromCfg := func(h string) (authn.Authenticator, bool) {
		c, ok := s.registry().cfg.Configs[h]
		if !ok || (c.Username == "" && c.Password == "" && c.Auth == "" && c.IdentityToken == "") {
			return nil, false
		}
		return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password, Auth: c.Auth, IdentityToken: c.IdentityToken}), true
	}
	if host != domain {
		if au, ok := fromCfg(host); ok {
			return au
		}
	}
	if !a.empty() && (host == domain || a.ServerAddress == "") {
		return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
	}
	if host == domain {
		if au, ok := fromCfg(domain); ok {
			return au
		}
	}
	return authn.Anonymous
}
