package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
)

const inspectUsage = `Usage: pebblestate inspect [-json] <checkpoint root | chk-<id> directory>

Lists the completed checkpoints of a checkpoint root (or the one checkpoint
of a chk-<id> directory): each one's creation time and, per instance's
handle, its operator, kind, key groups, files, newly uploaded bytes, full
state size, and its states with their kinds, codecs and TTL.

Exits 1 if the path is not a checkpoint root with a completed checkpoint,
or a checkpoint's metadata cannot be read; 2 for bad usage.

Flags:
`

// inspectCommand prints the completed checkpoints of a target.
func inspectCommand(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("inspect", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, inspectUsage)
		flags.PrintDefaults()
	}
	asJSON := flags.Bool("json", false, "print JSON, one array of checkpoints, for scripts")
	arg, code := parseCommand(flags, args, stderr)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pebblestate inspect: %v\n", err)
		return 1
	}
	ctx := context.Background()
	t, ids, err := openCommand(ctx, arg)
	if err != nil {
		return fail(err)
	}
	status := 0
	var out []checkpointJSON
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, t.st, id)
		if err != nil {
			fmt.Fprintf(stderr, "pebblestate inspect: checkpoint %d: %v\n", id, err)
			status = 1
			out = append(out, checkpointJSON{ID: id, Error: err.Error()})
			continue
		}
		out = append(out, toJSON(cp))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(err)
		}
		return status
	}
	for i, cp := range out {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printCheckpoint(stdout, cp)
	}
	return status
}

// The JSON form of inspect's output: stable names, for scripts.
type (
	checkpointJSON struct {
		ID                int64         `json:"id"`
		Created           string        `json:"created,omitempty"` // RFC 3339, UTC, milliseconds
		CreatedUnixMillis int64         `json:"created_unix_millis,omitempty"`
		Error             string        `json:"error,omitempty"` // the metadata cannot be read
		Handles           []handleJSON  `json:"handles,omitempty"`
		OperatorStates    []opStateJSON `json:"operator_states,omitempty"`
	}
	opStateJSON struct {
		Operator       string `json:"operator"`
		Subtask        int    `json:"subtask"`
		Parallelism    int    `json:"parallelism"`
		MaxParallelism int    `json:"max_parallelism"`
		File           string `json:"file"`
		Size           int64  `json:"size"`
	}
	handleJSON struct {
		Operator         string      `json:"operator"`
		InstanceID       string      `json:"instance_id"`
		Kind             string      `json:"kind"`
		MaxParallelism   int         `json:"max_parallelism"`
		KeyGroupStart    int         `json:"key_group_start"`
		KeyGroupEnd      int         `json:"key_group_end"`
		KeyCodec         string      `json:"key_codec"`
		Compression      string      `json:"compression,omitempty"`
		Files            int         `json:"files"`
		CheckpointedSize int64       `json:"checkpointed_size"`
		StateSize        int64       `json:"state_size"`
		States           []stateJSON `json:"states"`
	}
	stateJSON struct {
		Name           string `json:"name"`
		Kind           string `json:"kind"`
		KeyCodec       string `json:"key_codec"`
		NamespaceCodec string `json:"namespace_codec"`
		ValueCodec     string `json:"value_codec"`
		UserKeyCodec   string `json:"user_key_codec,omitempty"`
		TTL            bool   `json:"ttl"`
	}
)

func toJSON(cp *snapshot.Checkpoint) checkpointJSON {
	c := checkpointJSON{
		ID:                cp.ID,
		Created:           time.UnixMilli(cp.CreatedUnixMillis).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		CreatedUnixMillis: cp.CreatedUnixMillis,
		Handles:           []handleJSON{},
	}
	for _, h := range cp.Handles {
		hj := handleJSON{
			Operator: h.Operator, InstanceID: h.InstanceID, Kind: h.Kind,
			MaxParallelism: h.MaxParallelism, KeyGroupStart: h.KeyGroupStart, KeyGroupEnd: h.KeyGroupEnd,
			KeyCodec: h.KeyCodec, Compression: h.Compression, Files: len(h.Files) + len(h.Shared),
			CheckpointedSize: h.CheckpointedSize, StateSize: h.StateSize, States: []stateJSON{},
		}
		for _, s := range h.States {
			hj.States = append(hj.States, stateJSON{
				Name: s.Name, Kind: s.Kind.String(), KeyCodec: s.KeyCodec, NamespaceCodec: s.NamespaceCodec,
				ValueCodec: s.ValueCodec, UserKeyCodec: s.UserKeyCodec, TTL: s.TTL,
			})
		}
		c.Handles = append(c.Handles, hj)
	}
	for _, r := range cp.OperatorStates {
		c.OperatorStates = append(c.OperatorStates, opStateJSON{
			Operator: r.Operator, Subtask: r.Subtask, Parallelism: r.Parallelism, MaxParallelism: r.MaxParallelism,
			File: r.Name, Size: r.Size,
		})
	}
	return c
}

// printCheckpoint prints one checkpoint for people.
func printCheckpoint(w io.Writer, cp checkpointJSON) {
	if cp.Error != "" {
		fmt.Fprintf(w, "checkpoint %d: unreadable\n", cp.ID)
		return
	}
	fmt.Fprintf(w, "checkpoint %d, created %s, %s\n", cp.ID,
		strings.Replace(cp.Created, "T", " ", 1), plural(len(cp.Handles), "handle", "handles"))
	for _, h := range cp.Handles {
		fmt.Fprintf(w, "  operator %q, instance %s: %s, key groups [%d, %d) of %d, key codec %s, %s, %s written of %s\n",
			h.Operator, h.InstanceID, kindOf(h), h.KeyGroupStart, h.KeyGroupEnd, h.MaxParallelism, h.KeyCodec,
			plural(h.Files, "file", "files"), humanBytes(h.CheckpointedSize), humanBytes(h.StateSize))
		if len(h.States) == 0 {
			fmt.Fprintln(w, "    no states")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    state\tkind\tkey\tnamespace\tvalue\tmap key\tttl")
		for _, s := range h.States {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.KeyCodec, s.NamespaceCodec,
				s.ValueCodec, orDash(s.UserKeyCodec), onOff(s.TTL))
		}
		tw.Flush()
	}
	for _, o := range cp.OperatorStates {
		fmt.Fprintf(w, "  operator %q, subtask %d of %d: operator state, key groups of %d, %s\n",
			o.Operator, o.Subtask, o.Parallelism, o.MaxParallelism, humanBytes(o.Size))
	}
}

func kindOf(h handleJSON) string {
	if h.Compression != "" {
		return h.Kind + " (" + h.Compression + ")"
	}
	return h.Kind
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
