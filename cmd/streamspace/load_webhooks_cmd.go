package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/schemas"
)

// cmdLoadWebhooks measures webhook delivery on a running stack (make run):
// it starts a receiver on this machine, subscribes LOAD_WEBHOOKS webhooks
// to session.created through the API (ADMIN is an admin's bearer token),
// publishes LOAD_RATE events a second for LOAD_SECONDS into the outbox
// (DATABASE_URL), and reports deliveries/s, p50/p99 from an event's commit
// to its receipt, and duplicates; the webhooks are deleted at the end. The
// stack must allow the receiver's address (WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8).
func cmdLoadWebhooks(ctx context.Context, lookup func(string) (string, bool), stdout io.Writer) error {
	e := newEnvReader(lookup)
	api, token := e.str("API", "http://127.0.0.1:8080"), e.str("ADMIN", "")
	rate, secs, hooks := e.integer("LOAD_RATE", 65, 1, 10000), e.integer("LOAD_SECONDS", 20, 1, 3600),
		e.integer("LOAD_WEBHOOKS", 10, 1, 100)
	dbURL := e.postgresURL("DATABASE_URL")
	required(e, "DATABASE_URL", dbURL, databaseHint)
	required(e, "ADMIN", token, "an admin's bearer token: POST $API/api/auth/login")
	if err := e.err(); err != nil {
		return configError(err)
	}
	pool, err := schemas.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	rv, err := startLoadReceiver()
	if err != nil {
		return err
	}
	defer rv.srv.Close()
	c := &loadAPI{api: api, token: token}
	var ids []string
	defer func() {
		for _, id := range ids {
			_ = c.call(context.WithoutCancel(ctx), "DELETE", "/api/webhooks/"+id, nil, nil)
		}
	}()
	for i := range hooks {
		var created struct{ ID string }
		err := c.call(ctx, "POST", "/api/webhooks", map[string]any{"name": "load " + strconv.Itoa(i),
			"url": rv.url, "events": []string{"session.created"}, "rate_limit_per_second": 10000}, &created)
		if err != nil {
			return err
		}
		ids = append(ids, created.ID)
	}

	store := &schemas.Store{Pool: pool}
	committed := map[string]time.Time{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	began, n := time.Now(), 0
	for t, total := 1, rate*secs; n < total; t++ {
		<-tick.C
		batch := min(rate*t/10-n, total-n) // rate per second, in tenths
		if batch <= 0 {
			continue
		}
		err := store.InTx(ctx, func(tx pgx.Tx) error {
			for k := range batch {
				data := schemas.SessionEventData{SessionID: "load-" + strconv.Itoa(n+k), User: "load", State: "pending"}
				if _, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated, Data: data}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		now := time.Now()
		for k := range batch {
			committed["load-"+strconv.Itoa(n+k)] = now
		}
		n += batch
	}
	published := time.Since(began)
	want := n * hooks
	deadline := time.Now().Add(2 * time.Minute)
	for rv.count() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	got, dups, lat, last := rv.results(committed)
	elapsed := last.Sub(began)
	fmt.Fprintf(stdout, "%d events × %d webhooks published in %v; %d of %d deliveries received, %d duplicates\n",
		n, hooks, published.Round(time.Millisecond), got, want, dups)
	if len(lat) > 0 {
		fmt.Fprintf(stdout, "%.0f deliveries/s (first commit to last receipt %v); commit to receipt p50 %v p99 %v max %v\n",
			float64(got)/elapsed.Seconds(), elapsed.Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond),
			lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	}
	if got < want {
		return fmt.Errorf("only %d of %d deliveries arrived within 2 minutes of the last event", got, want)
	}
	return nil
}

// loadReceiver answers 204 and records each delivery's first receipt.
type loadReceiver struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	seen map[string]time.Time // webhook-id → first receipt
	of   map[string]string    // webhook-id → session_id (the event)
	dups int
}

func startLoadReceiver() (*loadReceiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rv := &loadReceiver{url: "http://" + l.Addr().String() + "/hook", seen: map[string]time.Time{}, of: map[string]string{}}
	rv.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var body struct {
			Data struct {
				SessionID string `json:"session_id"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		id := r.Header.Get("webhook-id")
		rv.mu.Lock()
		if _, dup := rv.seen[id]; dup {
			rv.dups++
		} else {
			rv.seen[id], rv.of[id] = now, body.Data.SessionID
		}
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = rv.srv.Serve(l) }()
	return rv, nil
}

func (rv *loadReceiver) count() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return len(rv.seen)
}

// results answers the deliveries received, the duplicates, the sorted
// latencies from each event's commit, and the last receipt.
func (rv *loadReceiver) results(committed map[string]time.Time) (int, int, []time.Duration, time.Time) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var lat []time.Duration
	var last time.Time
	for id, at := range rv.seen {
		if t0, ok := committed[rv.of[id]]; ok {
			lat = append(lat, at.Sub(t0))
		}
		if at.After(last) {
			last = at
		}
	}
	slices.Sort(lat)
	return len(rv.seen), rv.dups, lat, last
}

// loadAPI calls the StreamSpace API with a bearer token.
type loadAPI struct{ api, token string }

func (c *loadAPI) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}
