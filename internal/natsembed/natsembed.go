package natsembed

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running embedded NATS server with JetStream enabled.
type Server struct {
	s   *server.Server
	dir string
}

// Options configure Start. The zero value of every field means its
// default.
type Options struct {
	// Port to listen on, on 127.0.0.1. Default: 0, a free port.
	Port int
	// Ready is how long Start waits for the server to accept clients.
	// Default: 10 seconds.
	Ready time.Duration
}

// Start starts a server whose JetStream file store lives in dir (created
// if missing; a server started again on the same dir finds its streams).
func Start(dir string, o Options) (*Server, error) {
	if dir == "" {
		return nil, errors.New("nats: a store directory is required")
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ready := o.Ready
	if ready == 0 {
		ready = 10 * time.Second
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "pebblestate-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(ready) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("nats: embedded server in %s not ready after %v", dir, ready)
	}
	return &Server{s: s, dir: dir}, nil
}

// URL returns the URL clients connect to.
func (s *Server) URL() string { return s.s.ClientURL() }

// Dir returns the directory of the JetStream file store.
func (s *Server) Dir() string { return s.dir }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}
