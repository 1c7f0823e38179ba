package main

import (
	"net/netip"
	"strings"
	"time"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/safehttp"
)

// HubConfig is how the integration hub reaches webhooks and integrations,
// shared by the server (URL checks when webhooks are saved, the default rate
// limit of new webhooks) and the worker (deliveries).
type HubConfig struct {
	// AllowedCIDRs are destinations reachable although they are not public
	// (WEBHOOK_ALLOWED_CIDRS, e.g. 10.20.0.0/16 for an internal receiver, or
	// 127.0.0.0/8 for a local one). Everything else that is loopback,
	// private, link-local (cloud metadata) or otherwise not public is
	// refused at connect time.
	AllowedCIDRs []netip.Prefix
	// AllowHTTP permits plain http:// URLs to any host (WEBHOOK_ALLOW_HTTP);
	// otherwise http is only allowed inside AllowedCIDRs.
	AllowHTTP bool
	// Timeout bounds one attempt, response included (WEBHOOK_TIMEOUT, 15s).
	Timeout time.Duration
	// DisableAfter: a webhook or integration whose deliveries have all
	// failed for this long is disabled when a delivery gives up
	// (WEBHOOK_DISABLE_AFTER, 5 days as Svix).
	DisableAfter time.Duration
	// RateLimit is the requests per second of a webhook created without
	// rate_limit_per_second (WEBHOOK_RATE_LIMIT, the seed's 10).
	RateLimit int
	// FirstAttemptParallelism bounds the first attempts of one event made at
	// once (DELIVERY_FIRST_ATTEMPT_PARALLELISM, 64); more subscribers are
	// attempted in successive batches.
	FirstAttemptParallelism int
}

// SafeHTTP is the outbound client configuration of webhooks and
// integrations.
func (c HubConfig) SafeHTTP(userAgent string) safehttp.Options {
	return safehttp.Options{AllowedCIDRs: c.AllowedCIDRs, AllowHTTP: c.AllowHTTP, Timeout: c.Timeout, UserAgent: userAgent}
}

func readHub(e *envReader) HubConfig {
	return HubConfig{
		AllowedCIDRs:            readCIDRs(e, "WEBHOOK_ALLOWED_CIDRS"),
		AllowHTTP:               e.boolean("WEBHOOK_ALLOW_HTTP", false),
		Timeout:                 boundedDuration(e, "WEBHOOK_TIMEOUT", 15*time.Second, time.Second, time.Minute),
		DisableAfter:            boundedDuration(e, "WEBHOOK_DISABLE_AFTER", activities.DefaultDisableAfter, time.Minute, 365*24*time.Hour),
		RateLimit:               e.integer("WEBHOOK_RATE_LIMIT", 10, 1, 10000),
		FirstAttemptParallelism: e.integer("DELIVERY_FIRST_ATTEMPT_PARALLELISM", activities.DefaultFirstAttemptParallelism, 1, 1000),
	}
}

// devLoopback is what `streamspace dev` lets webhooks and integrations
// reach when WEBHOOK_ALLOWED_CIDRS is unset: receivers on this machine (the
// README's walk-through posts to one).
var devLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// devHubDefaults applies the dev stack's defaults to the hub configuration.
func devHubDefaults(e *envReader, hub *HubConfig) {
	if _, set := e.raw("WEBHOOK_ALLOWED_CIDRS"); !set {
		hub.AllowedCIDRs = devLoopback
	}
}

// readCIDRs reads a comma-separated list of CIDR prefixes (10.0.0.0/8) or
// single addresses (127.0.0.1, ::1).
func readCIDRs(e *envReader, name string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range e.list(name) {
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(item); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			e.bad(name, item, "must be a CIDR prefix such as 10.20.0.0/16 or an IP address (separate them with commas)")
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}

// boundedDuration reads a duration within [lo, hi].
func boundedDuration(e *envReader, name string, def, lo, hi time.Duration) time.Duration {
	d := e.duration(name, def)
	if d < lo || d > hi {
		v, _ := e.raw(name)
		e.bad(name, v, "must be from "+lo.String()+" to "+hi.String())
		return def
	}
	return d
}
