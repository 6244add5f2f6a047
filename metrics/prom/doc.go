// Package prom exports pebblestate's metrics to Prometheus: a
// prometheus.Collector over backends' Metrics and, optionally, the
// checkpoints a checkpoint.Coordinator reports. It is a package of its own
// so that the backend's API does not depend on the Prometheus client: a
// program that does not export to Prometheus need not import it (Pebble
// links the client all the same, for a histogram of its own).
//
// Every metric is named pebblestate_..., with its unit as the suffix
// (_bytes, _seconds) and _total for counters, and carries the labels
// operator and subtask (the subtask's index). Register one Collector with
// a registry and add each backend as it opens:
//
//	c := prom.NewCollector()
//	prometheus.MustRegister(c)
//	c.Add("window", 3, b) // b is a *backend.Backend[K]
//	defer c.Remove("window", 3)
//
// The table of metrics is in docs/DESIGN.md (section "Metrics").
package prom
