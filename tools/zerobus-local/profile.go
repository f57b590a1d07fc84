package main

import (
	"flag"
	"fmt"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// profileFlags are the flags of serve that set the service's limits.
type profileFlags struct {
	fs                      *flag.FlagSet
	profile, latency        *string
	streamQuota, tableQuota *string
	quotaMode               *string
}

func addProfileFlags(fs *flag.FlagSet) *profileFlags {
	return &profileFlags{
		fs: fs,
		profile: fs.String("profile", "default", "service `profile`: default (acknowledge as soon as durable, no quotas) or\n"+
			"databricks (the real service's limits: ack latency median=150ms,p95=500ms,\n"+
			"stream quota bytes=100MB,records=100000, table quota bytes=10GB, paced).\n"+
			"--ack-latency, --stream-quota, --table-quota and --quota-mode change single\n"+
			"limits of the profile"),
		latency: fs.String("ack-latency", "", "added time to acknowledgement: `median=D,p95=D` (log-normal), a fixed duration\n"+
			"such as 150ms, or 0. Acknowledgements stay cumulative and in order; requests\n"+
			"pipeline (each waits from its own arrival)"),
		streamQuota: fs.String("stream-quota", "", "per-stream quota per second: `bytes=SIZE,records=N` (SIZE such as 100MB or\n"+
			"64MiB; leave a key out for no limit), or off"),
		tableQuota: fs.String("table-quota", "", "per-table quota per second, shared by its streams: `bytes=SIZE,records=N` or off"),
		quotaMode: fs.String("quota-mode", "", "what a stream over a quota meets: `pace` (the server stops reading it and\n"+
			"acknowledges at the quota's rate, so the client's window fills; the profile's\n"+
			"default) or reject (the call ends with RESOURCE_EXHAUSTED, which clients retry)"),
	}
}

// options returns the options of the flags: the profile, then each limit
// given on the command line.
func (p *profileFlags) options() ([]zerobustest.Option, error) {
	prof, err := zerobustest.ParseProfile(*p.profile)
	if err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	opts := []zerobustest.Option{zerobustest.WithProfile(prof)}
	set := map[string]bool{}
	p.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["ack-latency"] {
		l, err := zerobustest.ParseAckLatency(*p.latency)
		if err != nil {
			return nil, fmt.Errorf("--ack-latency: %w", err)
		}
		opts = append(opts, zerobustest.WithAckLatency(l))
	}
	if set["stream-quota"] {
		q, err := zerobustest.ParseQuota(*p.streamQuota)
		if err != nil {
			return nil, fmt.Errorf("--stream-quota: %w", err)
		}
		opts = append(opts, zerobustest.WithStreamQuota(q))
	}
	if set["table-quota"] {
		q, err := zerobustest.ParseQuota(*p.tableQuota)
		if err != nil {
			return nil, fmt.Errorf("--table-quota: %w", err)
		}
		opts = append(opts, zerobustest.WithTableQuota(q))
	}
	if set["quota-mode"] {
		m, err := zerobustest.ParseQuotaMode(*p.quotaMode)
		if err != nil {
			return nil, fmt.Errorf("--quota-mode: %w", err)
		}
		opts = append(opts, zerobustest.WithQuotaMode(m))
	}
	return opts, nil
}

const profileHelp = `
--profile databricks behaves like the real service: each request waits for
its acknowledgement a time drawn from a log-normal distribution (median
150 ms, p95 500 ms) from its arrival, and a stream over 100 MB/s or 100,000
records/s, or a table over 10 GB/s, is paced: the server stops reading it
(HTTP/2 flow control pushes back) and acknowledges it at the quota's rate.
GET /stats reports each stream's rates and the time it was held back.
Smaller limits make tests quick, and --discard keeps the limits for
benchmarks:

  zerobus-local serve --discard --client id:secret --profile databricks
  zerobus-local serve --data-dir DIR --client id:secret --profile databricks \
      --ack-latency 20ms --stream-quota records=2000 --quota-mode reject
`
