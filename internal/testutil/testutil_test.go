package testutil

import (
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestIPTablesCleanup(t *testing.T) {
	save := `*nat
:CNI-abc - [0:0]
-A POSTROUTING -s 10.1.0.2/32 -m comment --comment "name: \"tnet\" id: \"x\"" -j CNI-abc
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A CNI-abc -d 10.1.0.0/24 -m comment --comment "name: \"tnet\" id: \"x\"" -j ACCEPT
COMMIT
*filter
-A FORWARD -m comment --comment "other" -j ACCEPT
COMMIT
`
	got := IPTablesCleanup(save, `tnet`)
	for _, want := range []string{"*nat\n", `-D POSTROUTING -s 10.1.0.2/32`, `-D CNI-abc -d 10.1.0.0/24`, "-F CNI-abc\n", "-X CNI-abc\n", "COMMIT\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"HOSTPORT", "*filter", "other"} {
		if strings.Contains(got, bad) {
			t.Errorf("script touches %q:\n%s", bad, got)
		}
	}
	if IPTablesCleanup(save, "nothing-matches") != "" {
		t.Error("a script for a marker nothing has")
	}
}

func TestServeInMemory(t *testing.T) {
	conn := ServeInMemory(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, health.NewServer()) })
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check over the in-memory connection: %v, %v", resp, err)
	}
}
