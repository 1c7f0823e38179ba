package schemas

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The write side of deliveries (migration 00007): the delivery engine
// (activities/deliveries.go) plans one delivery per (event, subscribed
// target), records every attempt and keeps the targets' failure streaks.
// delivery_reads.go answers the API.

// ---- Retry schedule -------------------------------------------------------

// WebhookRetryPolicy is a webhook's retry_policy: at most MaxAttempts
// attempts in all (the first one included), waiting between them as
// BackoffSeconds says (RetryDelay). Integrations use the defaults.
type WebhookRetryPolicy struct {
	MaxAttempts    int   // 0 = DefaultMaxAttempts
	BackoffSeconds []int // empty = DefaultRetrySchedule; one value = exponential base; more = explicit schedule
}

// MaxRetryDelay caps an exponential backoff and a receiver's Retry-After.
const MaxRetryDelay = 24 * time.Hour

// RetryDelay is how long to wait after the attempt-th failed attempt
// (1-based, counted from the first attempt of this run of the delivery)
// before the next one:
//
//   - BackoffSeconds empty: DefaultRetrySchedule[attempt-1] (its last value
//     for attempts beyond its end);
//   - one value N (the seed's "backoff_seconds": N): exponential, N·2^(attempt-1)
//     seconds, so N, 2N, 4N, …, capped at MaxRetryDelay;
//   - several values: an explicit schedule, BackoffSeconds[attempt-1] (its
//     last value beyond its end).
//
// The delay then gets ±10% jitter, derived from a hash of (deliveryID,
// attempt) so that it is the same every time it is computed (replays, the
// recorded next_attempt_at), while deliveries that failed together spread
// out. A receiver's Retry-After (capped at MaxRetryDelay) wins when it is
// longer. Whether there is a next attempt at all is the caller's decision
// (attempt < MaxAttempts).
func RetryDelay(p WebhookRetryPolicy, attempt int, deliveryID uuid.UUID, retryAfter time.Duration) time.Duration {
	i := max(attempt, 1) - 1
	var base time.Duration
	switch n := len(p.BackoffSeconds); {
	case n == 0:
		base = DefaultRetrySchedule[min(i, len(DefaultRetrySchedule)-1)]
	case n == 1:
		base = time.Duration(max(p.BackoffSeconds[0], 0)) * time.Second
		for k := 0; k < i && base > 0 && base < MaxRetryDelay; k++ {
			base *= 2
		}
		base = min(base, MaxRetryDelay)
	default:
		base = time.Duration(max(p.BackoffSeconds[min(i, n-1)], 0)) * time.Second
	}
	d := time.Duration(float64(base) * (0.9 + 0.2*jitterFraction(deliveryID, attempt)))
	return max(d, min(retryAfter, MaxRetryDelay))
}

// jitterFraction maps (id, attempt) to [0, 1), uniformly.
func jitterFraction(id uuid.UUID, attempt int) float64 {
	var buf [16 + 8]byte
	copy(buf[:], id[:])
	binary.BigEndian.PutUint64(buf[16:], uint64(attempt))
	sum := sha256.Sum256(buf[:])
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// MaxAttemptsOrDefault is p.MaxAttempts, or DefaultMaxAttempts when unset.
func (p WebhookRetryPolicy) MaxAttemptsOrDefault() int {
	if p.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return p.MaxAttempts
}

// ---- Planning ----------------------------------------------------------------

// PlannedDelivery is one delivery of an event, as PlanDeliveries answers it:
// ids only, no secret and no payload.
type PlannedDelivery struct {
	ID            uuid.UUID
	EventID       uuid.UUID
	EventType     string
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
	State         string
	Attempts      int
	// Held: its target's circuit is open, so its first attempt is left to
	// the target's retry loop (PlanLoopDeliveries only).
	Held bool
}

// uuidv7SQL generates a UUIDv7 in PostgreSQL 13+ (uuidv7() is 18+): the
// millisecond clock in the first 48 bits, version 7, the rest random.
const uuidv7SQL = `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing
	substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
	52, 1), 53, 1), 'hex')::uuid`

// planDeliveriesSQL inserts one delivery per enabled webhook and enabled
// integration subscribed to each event's type, skipping those that exist
// (the partial unique indexes), and answers every delivery of the event that
// is not finished. The inserted rows come from RETURNING; the rows that
// existed come from the statement's snapshot, which does not see the
// inserts, so none is answered twice.
var planDeliveriesSQL = `
WITH ev AS (
	SELECT id, type FROM events WHERE id = ANY($1::uuid[])
), wh AS (
	INSERT INTO deliveries (id, event_id, event_type, webhook_id, own_run, next_attempt_at)
	SELECT ` + uuidv7SQL + `, ev.id, ev.type, w.id, $2, ` + planLeaseSQL("w") + `
	  FROM ev JOIN webhooks w ON w.enabled AND w.events @> ARRAY[ev.type]
	    ON CONFLICT (webhook_id, event_id) WHERE webhook_id IS NOT NULL AND NOT test DO NOTHING
	RETURNING id, event_id, event_type, webhook_id, integration_id, state, attempts
), ig AS (
	INSERT INTO deliveries (id, event_id, event_type, integration_id, own_run, next_attempt_at)
	SELECT ` + uuidv7SQL + `, ev.id, ev.type, i.id, $2, ` + planLeaseSQL("i") + `
	  FROM ev JOIN integrations i ON i.enabled AND i.events @> ARRAY[ev.type]
	    ON CONFLICT (integration_id, event_id) WHERE integration_id IS NOT NULL AND NOT test DO NOTHING
	RETURNING id, event_id, event_type, webhook_id, integration_id, state, attempts
)
SELECT u.*, NOT $2 AND coalesce(w.circuit_open, i.circuit_open, false) FROM (
	SELECT * FROM wh
	UNION ALL SELECT * FROM ig
	UNION ALL SELECT id, event_id, event_type, webhook_id, integration_id, state, attempts
		FROM deliveries WHERE event_id = ANY($1::uuid[]) AND NOT test AND state IN ('pending', 'retrying')
) u LEFT JOIN webhooks w ON w.id = u.webhook_id LEFT JOIN integrations i ON i.id = u.integration_id
ORDER BY 1`

// planLeaseSQL is a new delivery's next_attempt_at (target is the alias of
// its webhook or integration): none for one whose retries run in its own
// delivery/<id> run; now for one whose target's circuit is open (the loop
// makes its first attempt); otherwise the end of the lease of the run
// making its first attempt (that run records the attempt long before; if
// it died, the loop makes it).
func planLeaseSQL(target string) string {
	return `CASE WHEN $2 THEN NULL WHEN ` + target + `.circuit_open THEN clock_timestamp()
		ELSE clock_timestamp() + $3::interval END`
}

// PlanDeliveries creates the deliveries of events, one per enabled webhook
// and integration subscribed to each one's type, and answers those not yet
// finished (pending or retrying), old and new, in one statement. Running it
// again for the same events creates nothing new: it is idempotent. An event
// that does not exist has no deliveries. Their retries run in runs of their
// own (own_run, the per-event DispatchEvent's way).
func (s *Store) PlanDeliveries(ctx context.Context, eventIDs ...uuid.UUID) ([]PlannedDelivery, error) {
	return s.planDeliveries(ctx, true, 0, eventIDs)
}

// PlanLoopDeliveries is PlanDeliveries for deliveries whose retries their
// target's retry loop makes (DueRetries): each new one is due to the loop
// lease after now, should the run making its first attempt not record it.
func (s *Store) PlanLoopDeliveries(ctx context.Context, lease time.Duration, eventIDs ...uuid.UUID) ([]PlannedDelivery, error) {
	return s.planDeliveries(ctx, false, lease, eventIDs)
}

func (s *Store) planDeliveries(ctx context.Context, ownRun bool, lease time.Duration, eventIDs []uuid.UUID) (
	[]PlannedDelivery, error) {
	rows, err := s.Pool.Query(ctx, planDeliveriesSQL, eventIDs, ownRun, lease)
	if err != nil {
		return nil, fmt.Errorf("plan deliveries of %d events: %w", len(eventIDs), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PlannedDelivery, error) {
		var p PlannedDelivery
		err := r.Scan(&p.ID, &p.EventID, &p.EventType, &p.WebhookID, &p.IntegrationID, &p.State, &p.Attempts, &p.Held)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("plan deliveries of %d events: %w", len(eventIDs), err)
	}
	return out, nil
}

// InsertTestDelivery creates the test delivery id (test, event type "test",
// no event) to the webhook or the integration named by exactly one of
// webhookID and integrationID. It is idempotent on id; ErrNotFound when the
// target does not exist.
func (s *Store) InsertTestDelivery(ctx context.Context, id uuid.UUID, webhookID, integrationID *uuid.UUID) error {
	if (webhookID == nil) == (integrationID == nil) {
		return errors.New("insert test delivery: set exactly one of webhook and integration")
	}
	var found bool
	err := s.Pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO deliveries (id, event_type, webhook_id, integration_id, test)
			SELECT $1, 'test', $2::uuid, $3::uuid, true
			 WHERE EXISTS (SELECT FROM webhooks WHERE id = $2) OR EXISTS (SELECT FROM integrations WHERE id = $3)
			    ON CONFLICT (id) DO NOTHING
			RETURNING id)
		SELECT EXISTS (SELECT FROM ins) OR EXISTS (SELECT FROM deliveries WHERE id = $1)`,
		id, webhookID, integrationID).Scan(&found)
	if err != nil {
		return fmt.Errorf("insert test delivery %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("test delivery target: %w", ErrNotFound)
	}
	return nil
}

// ---- Attempting ------------------------------------------------------------

// DeliveryJob is what one attempt of a delivery needs: the delivery, its
// event's payload, its target (the webhook or the integration, sealed
// columns still sealed) and, when that attempt number was already recorded,
// the recorded attempt.
type DeliveryJob struct {
	Delivery        Delivery
	EventPayload    json.RawMessage // nil for a test delivery
	EventOccurredAt time.Time       // the delivery's creation for a test
	Webhook         *Webhook        // nil for an integration
	Integration     *Integration    // nil for a webhook
	Recorded        *DeliveryAttempt
}

// DeliveryJobRequest names a delivery and the attempt number about to be made.
type DeliveryJobRequest struct {
	DeliveryID uuid.UUID
	Attempt    int
}

// LoadDeliveryJobs loads the jobs of the requested deliveries in one query.
// A delivery that no longer exists (its target was deleted) is missing from
// the answer, which is keyed by delivery id.
func (s *Store) LoadDeliveryJobs(ctx context.Context, reqs []DeliveryJobRequest) (map[uuid.UUID]DeliveryJob, error) {
	ids := make([]uuid.UUID, len(reqs))
	nums := make([]int32, len(reqs))
	for i, r := range reqs {
		ids[i], nums[i] = r.DeliveryID, int32(r.Attempt)
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT d.id, d.event_id, d.event_type, d.webhook_id, d.integration_id, d.test, d.state, d.attempts,
		       d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at, d.completed_at,
		       e.payload, coalesce(e.occurred_at, d.created_at),
		       w.id, coalesce(w.name, ''), coalesce(w.url, ''), coalesce(w.enabled, false), w.headers_enc, w.secret_enc,
		       w.previous_secret_enc, w.previous_secret_expires_at, coalesce(w.max_attempts, 0),
		       coalesce(w.backoff_seconds, '{}'), coalesce(w.rate_limit_per_second, 0),
		       i.id, coalesce(i.type, ''), coalesce(i.name, ''), coalesce(i.enabled, false), i.config_enc,
		       a.attempt, a.started_at, a.latency_ms, a.request_url, a.request_headers, a.request_body,
		       a.response_status, a.response_headers, a.response_body, a.error, a.outcome, a.next_attempt_at
		  FROM unnest($1::uuid[], $2::int[]) AS r(id, attempt)
		  JOIN deliveries d ON d.id = r.id
		  LEFT JOIN events e ON e.id = d.event_id
		  LEFT JOIN webhooks w ON w.id = d.webhook_id
		  LEFT JOIN integrations i ON i.id = d.integration_id
		  LEFT JOIN delivery_attempts a ON a.delivery_id = d.id AND a.attempt = r.attempt`, ids, nums)
	if err != nil {
		return nil, fmt.Errorf("load deliveries: %w", err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]DeliveryJob, len(reqs))
	for rows.Next() {
		var (
			j                                DeliveryJob
			d                                = &j.Delivery
			lastStatus                       *int32
			wID, iID                         *uuid.UUID
			w                                Webhook
			backoff                          []int32
			in                               Integration
			aNum, aLatency, aStatus          *int32
			aStarted, aNext                  *time.Time
			aURL, aBody, aRespBody, aErr, aO *string
			aReqH, aRespH                    map[string]string
		)
		err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.WebhookID, &d.IntegrationID, &d.Test, &d.State,
			&d.Attempts, &d.NextAttemptAt, &lastStatus, &d.LastError, &d.CreatedAt, &d.UpdatedAt, &d.CompletedAt,
			&j.EventPayload, &j.EventOccurredAt,
			&wID, &w.Name, &w.URL, &w.Enabled, &w.HeadersEnc, &w.SecretEnc, &w.PreviousSecretEnc,
			&w.PreviousSecretExpiresAt, &w.MaxAttempts, &backoff, &w.RateLimitPerSecond,
			&iID, &in.Type, &in.Name, &in.Enabled, &in.ConfigEnc,
			&aNum, &aStarted, &aLatency, &aURL, &aReqH, &aBody, &aStatus, &aRespH, &aRespBody, &aErr, &aO, &aNext)
		if err != nil {
			return nil, fmt.Errorf("load deliveries: %w", err)
		}
		d.LastStatus = intPtr(lastStatus)
		if wID != nil {
			w.ID = *wID
			w.BackoffSeconds = make([]int, len(backoff))
			for i, b := range backoff {
				w.BackoffSeconds[i] = int(b)
			}
			j.Webhook = &w
		}
		if iID != nil {
			in.ID = *iID
			j.Integration = &in
		}
		if aNum != nil {
			j.Recorded = &DeliveryAttempt{DeliveryID: d.ID, Attempt: int(*aNum), StartedAt: *aStarted,
				Latency: time.Duration(*aLatency) * time.Millisecond, RequestURL: *aURL, RequestHeaders: aReqH,
				RequestBody: *aBody, ResponseStatus: intPtr(aStatus), ResponseHeaders: aRespH,
				ResponseBody: *aRespBody, Error: *aErr, Outcome: *aO, NextAttemptAt: aNext}
		}
		out[d.ID] = j
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load deliveries: %w", err)
	}
	return out, nil
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}

// recordAttemptsSQL records a batch of attempts in one statement (so one
// transaction): each attempt row is inserted unless that attempt number is
// already recorded (a retried activity: the first record stands); for each
// inserted row the delivery takes the attempt's outcome as its state; and the
// failure streak of each target of a real (non-test) delivery starts at its
// first failed attempt and ends at a success. A target row is only written
// when its streak changes, so a healthy target's row is not touched.
const recordAttemptsSQL = `
WITH r AS (
	SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::int[], $5::text[], $6::text[], $7::text[],
		$8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[])
		AS r(delivery_id, attempt, started_at, latency_ms, request_url, request_headers, request_body,
		     response_status, response_headers, response_body, error, outcome, next_attempt_at)
), ins AS (
	INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, request_url, request_headers,
		request_body, response_status, response_headers, response_body, error, outcome, next_attempt_at)
	SELECT r.delivery_id, r.attempt, r.started_at, r.latency_ms, r.request_url, r.request_headers::jsonb,
	       r.request_body, r.response_status, r.response_headers::jsonb, r.response_body, r.error, r.outcome,
	       r.next_attempt_at
	  FROM r JOIN deliveries d ON d.id = r.delivery_id
	    ON CONFLICT (delivery_id, attempt) DO NOTHING
	RETURNING delivery_id, attempt
), upd AS (
	UPDATE deliveries d SET state = r.outcome, attempts = greatest(d.attempts, r.attempt),
	       next_attempt_at = r.next_attempt_at, last_status = r.response_status, last_error = r.error,
	       completed_at = CASE WHEN r.outcome IN ('succeeded', 'failed') THEN clock_timestamp() END,
	       updated_at = clock_timestamp()
	  FROM r JOIN ins USING (delivery_id, attempt)
	 WHERE d.id = r.delivery_id AND d.attempts <= r.attempt AND d.state <> 'cancelled'
	RETURNING d.id, d.webhook_id, d.integration_id, d.test, r.outcome, r.started_at
), streak AS (
	SELECT webhook_id, integration_id, bool_or(outcome = 'succeeded') AS ok, min(started_at) AS since
	  FROM upd WHERE NOT test GROUP BY webhook_id, integration_id
), wh AS (
	UPDATE webhooks w SET failing_since = CASE WHEN s.ok THEN NULL ELSE s.since END
	  FROM streak s
	 WHERE w.id = s.webhook_id AND (s.ok = (w.failing_since IS NOT NULL))
	RETURNING w.id
), ig AS (
	UPDATE integrations i SET failing_since = CASE WHEN s.ok THEN NULL ELSE s.since END
	  FROM streak s
	 WHERE i.id = s.integration_id AND (s.ok = (i.failing_since IS NOT NULL))
	RETURNING i.id
)
SELECT r.delivery_id, ins.delivery_id IS NOT NULL
  FROM r LEFT JOIN ins USING (delivery_id, attempt)`

// RecordDeliveryAttempts records attempts (DeliveryAttempt.Outcome is the
// delivery's new state, NextAttemptAt its next attempt), each with its
// delivery's new state, and the targets' failure streaks, in one
// transaction. It answers, per attempt in order, whether it was recorded now
// (false: that attempt number was recorded before, or the delivery is gone).
func (s *Store) RecordDeliveryAttempts(ctx context.Context, attempts []DeliveryAttempt) ([]bool, error) {
	n := len(attempts)
	var (
		ids                                        = make([]uuid.UUID, n)
		nums, latencies                            = make([]int32, n), make([]int32, n)
		statuses                                   = make([]*int32, n)
		started, next                              = make([]time.Time, n), make([]*time.Time, n)
		urls, reqH, reqB, respH, respB, errs, outs = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	)
	for i, a := range attempts {
		ids[i], nums[i], started[i], next[i] = a.DeliveryID, int32(a.Attempt), a.StartedAt, a.NextAttemptAt
		latencies[i] = int32(min(a.Latency.Milliseconds(), math.MaxInt32))
		if a.ResponseStatus != nil {
			v := int32(*a.ResponseStatus)
			statuses[i] = &v
		}
		urls[i], reqB[i], respB[i], errs[i], outs[i] = a.RequestURL, a.RequestBody, a.ResponseBody, a.Error, a.Outcome
		reqH[i], respH[i] = headersJSON(a.RequestHeaders), headersJSON(a.ResponseHeaders)
	}
	rows, err := s.Pool.Query(ctx, recordAttemptsSQL, ids, nums, started, latencies, urls, reqH, reqB, statuses,
		respH, respB, errs, outs, next)
	if err != nil {
		return nil, fmt.Errorf("record delivery attempts: %w", err)
	}
	// A batch holds at most one attempt per delivery.
	recorded := make(map[uuid.UUID]bool, n)
	for rows.Next() {
		var id uuid.UUID
		var ok bool
		if err := rows.Scan(&id, &ok); err != nil {
			rows.Close()
			return nil, fmt.Errorf("record delivery attempts: %w", err)
		}
		recorded[id] = recorded[id] || ok
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record delivery attempts: %w", err)
	}
	out := make([]bool, n)
	for i, a := range attempts {
		out[i] = recorded[a.DeliveryID]
	}
	return out, nil
}

func headersJSON(h map[string]string) string {
	if h == nil {
		return "{}"
	}
	b, err := json.Marshal(h)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// FailDelivery finishes a delivery as failed without an attempt (its target
// is disabled, or cannot be used): state failed, last_error reason. A
// delivery that already finished is left alone. It answers whether the
// delivery exists.
func (s *Store) FailDelivery(ctx context.Context, id uuid.UUID, reason string) (bool, error) {
	var found bool
	err := s.Pool.QueryRow(ctx, `WITH u AS (
			UPDATE deliveries SET state = 'failed', last_error = $2, next_attempt_at = NULL,
			       completed_at = clock_timestamp(), updated_at = clock_timestamp()
			 WHERE id = $1 AND state IN ('pending', 'retrying') RETURNING id)
		SELECT EXISTS (SELECT FROM u) OR EXISTS (SELECT FROM deliveries WHERE id = $1)`, id, reason).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("fail delivery %s: %w", id, err)
	}
	return found, nil
}

// DeliveryProgress is where a delivery stands, for a run that continues it
// (a redelivery).
type DeliveryProgress struct {
	ID            uuid.UUID
	EventType     string
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
	Test          bool
	State         string
	Attempts      int
}

// GetDeliveryProgress reads a delivery's progress; ErrNotFound when it does
// not exist.
func (s *Store) GetDeliveryProgress(ctx context.Context, id uuid.UUID) (DeliveryProgress, error) {
	var p DeliveryProgress
	err := s.Pool.QueryRow(ctx, `SELECT id, event_type, webhook_id, integration_id, test, state, attempts
		FROM deliveries WHERE id = $1`, id).Scan(&p.ID, &p.EventType, &p.WebhookID, &p.IntegrationID, &p.Test,
		&p.State, &p.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("delivery %s: %w", id, err)
	}
	return p, nil
}

// ---- Outbound rate limits ----------------------------------------------------

// OutboundRate asks for one request of Key under Limit per Window.
type OutboundRate struct {
	Key    string
	Limit  int
	Window time.Duration
}

// takeRatesSQL is RateCounter.Take (rateTakeSQL) for several distinct keys
// in one statement: each key's request is counted in its current window only
// while the sliding-window estimate before it (the previous window weighted,
// plus the current count) is under limit − ½, under the row lock of the
// current window, so concurrent takes on any worker (and RateCounter.Take
// on the same keys) never admit more than the limit. Rows are locked in key
// order, so two batches cannot deadlock. RETURNING lists the keys admitted.
const takeRatesSQL = `
WITH req AS (
	SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::float8[], $6::int8[])
		AS r(key, cur, prev, expires, weight, lim)
), est AS (
	SELECT req.*, coalesce((SELECT max(count) FROM rate_limit_counters c
	                         WHERE c.key = req.key AND c.window_start = req.prev), 0) * req.weight AS prevw
	  FROM req
)
INSERT INTO rate_limit_counters AS c (key, window_start, count, expires_at)
SELECT key, cur, 1, expires FROM est WHERE prevw < lim - 0.5::float8 ORDER BY key
    ON CONFLICT (key, window_start) DO UPDATE SET count = c.count + 1
 WHERE (SELECT e.prevw FROM est e WHERE e.key = c.key) + c.count < (SELECT e.lim FROM est e WHERE e.key = c.key) - 0.5::float8
RETURNING c.key`

// TakeOutboundRates counts one request for each key that fits its limit, in
// one round trip, and answers the keys admitted. Keys must be distinct.
// The windows are placed at now, as RateWindowAt does.
func (s *Store) TakeOutboundRates(ctx context.Context, reqs []OutboundRate, now time.Time) (map[string]bool, error) {
	n := len(reqs)
	keys, curs, prevs, exps := make([]string, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	weights, limits := make([]float64, n), make([]int64, n)
	for i, r := range reqs {
		w := RateWindowAt(now, r.Window)
		keys[i], curs[i], prevs[i], exps[i] = r.Key, w.Start, w.Start.Add(-w.Length), w.Start.Add(2*w.Length)
		weights[i], limits[i] = w.Weight, int64(r.Limit)
	}
	rows, err := s.Pool.Query(ctx, takeRatesSQL, keys, curs, prevs, exps, weights, limits)
	if err != nil {
		return nil, fmt.Errorf("take outbound rates: %w", err)
	}
	admitted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("take outbound rates: %w", err)
	}
	out := make(map[string]bool, len(admitted))
	for _, k := range admitted {
		out[k] = true
	}
	return out, nil
}

// ---- Disabling targets -------------------------------------------------------

// DisabledTarget is a webhook or integration that was just disabled
// automatically.
type DisabledTarget struct {
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
	Name          string
	Reason        string
	FailingSince  *time.Time
	Cancelled     Cancelled // its deliveries that were waiting to retry, now cancelled
}

// DisableDeliveryTarget disables the enabled webhook or integration named by
// exactly one of webhookID and integrationID, with reason as its
// disabled_reason. With failingFor > 0 it only does so when the target has
// been failing (failing_since) for at least that long, and the reason is
// completed with since when; in the same statement its deliveries waiting
// to retry are cancelled (Cancelled counts them and names those with runs
// of their own, to be ended). ok is false when nothing was disabled
// (already disabled, gone, or not failing for long enough).
func (s *Store) DisableDeliveryTarget(ctx context.Context, webhookID, integrationID *uuid.UUID, reason string,
	failingFor time.Duration) (DisabledTarget, bool, error) {
	table, column, id, err := deliveryTarget(webhookID, integrationID)
	if err != nil {
		return DisabledTarget{}, false, fmt.Errorf("disable delivery target: %w", err)
	}
	// The reason is a parameter, never a format string: it quotes receivers.
	q := `WITH t AS (
		UPDATE ` + table + ` SET enabled = false, updated_at = clock_timestamp(),
			disabled_reason = $2 || CASE WHEN $3::interval > '0' AND failing_since IS NOT NULL
				THEN '; failing since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
				ELSE '' END
		WHERE id = $1 AND enabled AND ($3::interval <= '0' OR failing_since <= clock_timestamp() - $3::interval)
		RETURNING id, name, disabled_reason, failing_since
	), c AS (
		UPDATE deliveries d SET state = 'cancelled', last_error = $4, next_attempt_at = NULL,
			completed_at = clock_timestamp(), updated_at = clock_timestamp()
		  FROM t WHERE d.` + column + ` = t.id AND d.state IN ('pending', 'retrying') AND NOT d.test
		RETURNING d.id, d.own_run)
	SELECT name, disabled_reason, failing_since, ` + cancelledSQL + ` FROM t`
	args := []any{id, reason, failingFor, table[:len(table)-1] + " disabled"}
	t := DisabledTarget{WebhookID: webhookID, IntegrationID: integrationID}
	err = s.Pool.QueryRow(ctx, q, args...).Scan(&t.Name, &t.Reason, &t.FailingSince, &t.Cancelled.Count, &t.Cancelled.Runs)
	if errors.Is(err, pgx.ErrNoRows) {
		return DisabledTarget{}, false, nil
	}
	if err != nil {
		return DisabledTarget{}, false, fmt.Errorf("disable %s %s: %w", table[:len(table)-1], id, err)
	}
	return t, true, nil
}

// NoticeRecipients lists the enabled integrations (config still sealed) that
// receive notices to admins, except the one named by exclude (the one a
// notice is about).
func (s *Store) NoticeRecipients(ctx context.Context, exclude *uuid.UUID) ([]Integration, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, type, name, config_enc FROM integrations
		WHERE enabled AND id IS DISTINCT FROM $1 ORDER BY created_at, id`, exclude)
	if err != nil {
		return nil, fmt.Errorf("notice recipients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Integration, error) {
		var in Integration
		err := r.Scan(&in.ID, &in.Type, &in.Name, &in.ConfigEnc)
		in.Enabled = true
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("notice recipients: %w", err)
	}
	return out, nil
}
