package cri

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-runtime/cri-runtime/pkg/cri/events"
)

// TestCloseEndsEventStreams: Close ends open GetContainerEvents streams
// with Unavailable, a stream opened after it ends at once, and the gRPC
// server's GracefulStop then returns instead of waiting on them.
func TestCloseEndsEventStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := &Service{broadcast: events.New(events.DefaultBuffer), cancel: func() {}}
	s.ready.Store(true)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(UnaryInterceptor(s)), grpc.ChainStreamInterceptor(StreamInterceptor(s)))
	s.Register(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)

	const streams = 3
	var open []grpc.ServerStreamingClient[runtimeapi.ContainerEventResponse]
	for range streams {
		st, err := client.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, st)
	}
	// Every stream is subscribed once it has had an event.
	for deadline := time.Now().Add(10 * time.Second); s.broadcast.Subscribers() < streams; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d streams subscribed", s.broadcast.Subscribers(), streams)
		}
	}
	s.broadcast.Publish(&runtimeapi.ContainerEventResponse{ContainerId: "c1", ContainerEventType: evCreated})
	for i, st := range open {
		if e, err := st.Recv(); err != nil || e.GetContainerId() != "c1" {
			t.Fatalf("stream %d: got %v, %v before Close, want the c1 event", i, e, err)
		}
	}

	s.Close()
	s.Close() // a second Close (the daemon's deferred one) is harmless
	for i, st := range open {
		if _, err := st.Recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("stream %d after Close: %v, want Unavailable", i, err)
		}
	}
	late, err := client.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("stream opened after Close: %v, want Unavailable", err)
	}
	if n := s.broadcast.Subscribers(); n != 0 {
		t.Errorf("%d subscribers left after Close", n)
	}

	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("GracefulStop still waiting 10s after Close")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
