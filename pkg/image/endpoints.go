package image

// endpoints lists where to pull r from, in order:
//   - the hosts.toml of r's host, when config_path has one: its hosts
//     that may serve the pull (resolve is needed unless r names a digest),
//     then its server;
//   - else the inline [registry.mirrors."<host>"]: its endpoints, then
//     the upstream host unless fallback = false;
//   - else _default/hosts.toml, with the server defaulting to r's host;
//   - else the upstream host.
func (s *Service) endpoints(r Reference) []endpoint {
	reg := s.registry()
	if f := reg.hosts.files[r.Domain]; f != nil {
		return f.endpoints(r)
	}
	m, ok := reg.cfg.Mirrors[r.Domain]
	if !ok && reg.hosts.def != nil {
		return reg.hosts.def.endpoints(r)
	}
	var eps []endpoint
	if ok {
		for _, e := range m.Endpoints {
			ep, _ := parseEndpoint(e) // checked by Validate
			eps = append(eps, ep)
		}
	}
	if !ok || m.fallback() {
		eps = append(eps, endpoint{host: r.Domain})
	}
	return eps
}

func (f *hostsFile) endpoints(r Reference) []endpoint {
	need := capPull | capResolve
	if r.Digest != "" {
		need = capPull
	}
	var eps []endpoint
	add := func(e *hostEntry, host string) {
		if e.caps&need != need {
			return
		}
		eps = append(eps, endpoint{host: host, insecure: e.scheme == "http", via: e})
	}
	for i := range f.hosts {
		add(&f.hosts[i], f.hosts[i].host)
	}
	host := f.server.host
	if host == "" {
		host = r.Domain
	}
	add(&f.server, host)
	return eps
}

// isServer reports whether host is the server a hosts.toml names for
// domain: the upstream under another name ("registry-1.docker.io" for
// docker.io), which gets domain's credentials as the upstream would.
func (r *registryState) isServer(host, domain string) bool {
	f := r.hosts.files[domain]
	if f == nil {
		if _, ok := r.cfg.Mirrors[domain]; ok {
			return false
		}
		f = r.hosts.def
	}
	return f != nil && f.server.host != "" && f.server.host == host
}
