package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// SecretOpener opens values sealed at rest; *secretbox.Box is one.
type SecretOpener interface {
	Open(sealed []byte) ([]byte, error)
}

// Deliveries are the activities that deliver events to webhooks and
// integrations: planning an event's deliveries, making attempts (signed HTTP
// POSTs, or a notify.Sender call) and recording each one, and telling admins
// when a target was disabled. Only ids travel through Temporal: secrets and
// payloads are loaded here, from PostgreSQL.
type Deliveries struct {
	Store *schemas.Store
	// Secrets opens webhook secrets, their extra headers and integration
	// configs; nil makes every attempt fail with a message saying
	// ENCRYPTION_KEY is missing (and retry, so a fixed worker delivers).
	Secrets SecretOpener
	// HTTP posts to webhooks: an SSRF-safe client (internal/safehttp) with
	// the per-attempt timeout. nil = safehttp.NewClient with its defaults
	// (public addresses only, 15 s).
	HTTP *http.Client
	// Senders deliver to integrations, keyed by type (notify.Senders).
	Senders map[string]notify.Sender
	// Rate counts outbound requests per target across workers; nil = a
	// counter over Store's pool.
	Rate *schemas.RateCounter
	// UserAgent of webhook requests ("" = "StreamSpace-Webhooks").
	UserAgent string
	// DisableAfter is how long a target must have failed without a single
	// success before a delivery that gives up disables it (0 =
	// DefaultDisableAfter).
	DisableAfter time.Duration
	// FirstAttemptParallelism bounds the first attempts of one event made at
	// once, in one local activity (0 = DefaultFirstAttemptParallelism).
	FirstAttemptParallelism int
	// RateWaitBudget is how long an attempt waits for its target's rate
	// limit before it gives the slot back to the workflow as "throttled"
	// (0 = DefaultRateWaitBudget).
	RateWaitBudget time.Duration
	Logger         *slog.Logger
	// Waker wakes the retry loops of targets (WakeTargetRetries): the
	// worker's workflows.Client.
	Waker RetryWaker
	// Now is the clock (nil = time.Now); tests move it.
	Now func() time.Time

	initOnce sync.Once
	gates    sync.Map // rate-limit key → chan struct{}: one waiter per key and process polls the counter
}

// Defaults of Deliveries.
const (
	DefaultDisableAfter            = 5 * 24 * time.Hour // Svix's five days
	DefaultFirstAttemptParallelism = 64
	DefaultRateWaitBudget          = 10 * time.Second
	defaultUserAgent               = "StreamSpace-Webhooks"
)

func (a *Deliveries) init() {
	a.initOnce.Do(func() {
		if a.HTTP == nil {
			a.HTTP = safehttp.NewClient(safehttp.Options{})
		}
		if a.Rate == nil && a.Store != nil {
			a.Rate = schemas.NewRateCounter(a.Store.Pool, schemas.RateCounterOptions{Timeout: 2 * time.Second})
		}
		if a.Logger == nil {
			a.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

func (a *Deliveries) httpClient() *http.Client { a.init(); return a.HTTP }

func (a *Deliveries) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Deliveries) userAgent() string {
	if a.UserAgent == "" {
		return defaultUserAgent
	}
	return a.UserAgent
}

func (a *Deliveries) disableAfter() time.Duration {
	if a.DisableAfter <= 0 {
		return DefaultDisableAfter
	}
	return a.DisableAfter
}

// Outcomes of an attempt as the workflows see them: a delivery state, or
// one of two that are not.
const (
	OutcomeSucceeded = schemas.DeliverySucceeded
	OutcomeRetrying  = schemas.DeliveryRetrying // wait Delay, then make the next attempt
	OutcomeFailed    = schemas.DeliveryFailed
	// OutcomeThrottled: the target's rate limit left no room within the
	// wait budget; no request was made and no attempt recorded. Try the
	// same attempt again after Delay.
	OutcomeThrottled = "throttled"
	// OutcomeGone: the delivery no longer exists (its target was deleted).
	OutcomeGone = "gone"
)

// ---- Planning ----------------------------------------------------------------

// PlanDeliveriesInput names the event to plan deliveries for.
type PlanDeliveriesInput struct {
	EventID string
}

// PlanEventsInput names the events of a batch to plan deliveries for.
type PlanEventsInput struct {
	EventIDs []string
	// RetryLoop: the deliveries' retries are their target's retry loop's
	// (each new one due to it FirstAttemptLease from now); otherwise each
	// retries in a run of its own (batch runs started before the loops).
	RetryLoop bool `json:",omitempty"`
}

// FirstAttemptLease is how long the batch run making a delivery's first
// attempt has it before the target's retry loop takes it over: far longer
// than the first attempts' local activities with their retries.
const FirstAttemptLease = 15 * time.Minute

// PlannedDelivery is one delivery of the event, ids only.
type PlannedDelivery struct {
	DeliveryID    string
	EventID       string
	EventType     string
	WebhookID     string // "" for an integration
	IntegrationID string // "" for a webhook
	Attempts      int    // attempts recorded so far (0 for a new delivery)
	// Held: its target's circuit is open; its first attempt is the target
	// retry loop's (RetryLoop plans only).
	Held bool `json:",omitempty"`
}

// PlanDeliveriesResult lists the deliveries still to make, and how many
// first attempts the workflow may run at once.
type PlanDeliveriesResult struct {
	Deliveries  []PlannedDelivery
	Parallelism int
}

// PlanDeliveries creates one delivery per enabled webhook and integration
// subscribed to the event's type (idempotent: a replay creates nothing new)
// and answers the event's unfinished deliveries. It is the per-event
// workflow's step (runs started before batched dispatch); PlanEventDeliveries
// is the batch's.
func (a *Deliveries) PlanDeliveries(ctx context.Context, in PlanDeliveriesInput) (PlanDeliveriesResult, error) {
	id, err := uuid.Parse(in.EventID)
	if err != nil {
		return PlanDeliveriesResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bad event id %q", in.EventID), "BadEventID", err)
	}
	return a.plan(ctx, true, id)
}

// PlanEventDeliveries plans the deliveries of a batch of events in one
// statement, as PlanDeliveries does for one.
func (a *Deliveries) PlanEventDeliveries(ctx context.Context, in PlanEventsInput) (PlanDeliveriesResult, error) {
	ids, err := parseEventIDs(in.EventIDs)
	if err != nil {
		return PlanDeliveriesResult{}, err
	}
	return a.plan(ctx, !in.RetryLoop, ids...)
}

func (a *Deliveries) plan(ctx context.Context, ownRuns bool, eventIDs ...uuid.UUID) (PlanDeliveriesResult, error) {
	var planned []schemas.PlannedDelivery
	var err error
	if ownRuns {
		planned, err = a.Store.PlanDeliveries(ctx, eventIDs...)
	} else {
		planned, err = a.Store.PlanLoopDeliveries(ctx, FirstAttemptLease, eventIDs...)
	}
	if err != nil {
		return PlanDeliveriesResult{}, err
	}
	res := PlanDeliveriesResult{Parallelism: a.FirstAttemptParallelism}
	if res.Parallelism <= 0 {
		res.Parallelism = DefaultFirstAttemptParallelism
	}
	for _, p := range planned {
		res.Deliveries = append(res.Deliveries, PlannedDelivery{DeliveryID: p.ID.String(), EventID: p.EventID.String(),
			EventType: p.EventType, WebhookID: idString(p.WebhookID), IntegrationID: idString(p.IntegrationID),
			Attempts: p.Attempts, Held: p.Held})
	}
	return res, nil
}

func idString(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// ---- Attempts ------------------------------------------------------------------

// AttemptInput asks for one attempt of a delivery.
type AttemptInput struct {
	DeliveryID string
	// Attempt is the attempt's number in the delivery's log (1 for the first
	// ever). If that number is already recorded, the recorded outcome is
	// answered and nothing is sent: a retried activity never sends twice
	// what it already recorded.
	Attempt int
	// Try counts the attempts of this run (1 = its first): a redelivery
	// continues the attempt numbers but gets the retry policy afresh. The
	// backoff after a failure and the give-up point (Try = max attempts)
	// follow Try.
	Try int
	// Record asks for the attempt's record in the result (test sends).
	Record bool
}

// AttemptsInput is a batch of attempts of different deliveries, made at once.
type AttemptsInput struct {
	Attempts []AttemptInput
}

// AttemptResult is what the workflow needs of an attempt: no secret, no
// payload.
type AttemptResult struct {
	DeliveryID string
	Attempt    int
	Outcome    string        // Outcome*
	Delay      time.Duration // retrying, throttled: wait this long before the next attempt
	Status     int           // the receiver's HTTP status; 0 = none
	Error      string        // why it failed, shortened
	// Disabled is set when this attempt disabled its target (410, or
	// failures for longer than DisableAfter): the notice to send to admins.
	Disabled *Notice
	// EndRuns lists the deliveries the disabling cancelled that retry in
	// runs of their own: the workflow ends those runs.
	EndRuns []string `json:",omitempty"`
	// Record is the attempt as recorded, when asked for.
	Record *schemas.DeliveryAttempt

	gone bool // 410: disable the target
}

// AttemptDelivery makes one attempt of one delivery (the retries'
// activity).
func (a *Deliveries) AttemptDelivery(ctx context.Context, in AttemptInput) (AttemptResult, error) {
	res, err := a.AttemptDeliveries(ctx, AttemptsInput{Attempts: []AttemptInput{in}})
	if err != nil {
		return AttemptResult{}, err
	}
	return res[0], nil
}

// AttemptDeliveries makes one attempt of each delivery, all at once: one
// query loads them, the requests run in parallel, one statement records
// every attempt with its delivery's new state. Deliveries of a disabled
// target fail without a request. Errors are for what a retry of the whole
// batch can fix (the database); a receiver's failure is an outcome.
func (a *Deliveries) AttemptDeliveries(ctx context.Context, in AttemptsInput) ([]AttemptResult, error) {
	a.init()
	reqs := make([]schemas.DeliveryJobRequest, len(in.Attempts))
	for i, at := range in.Attempts {
		id, err := uuid.Parse(at.DeliveryID)
		if err != nil || at.Attempt < 1 {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("bad attempt %q #%d", at.DeliveryID, at.Attempt), "BadDeliveryID", err)
		}
		reqs[i] = schemas.DeliveryJobRequest{DeliveryID: id, Attempt: at.Attempt}
	}
	jobs, err := a.Store.LoadDeliveryJobs(ctx, reqs)
	if err != nil {
		return nil, err
	}
	admitted := a.takeRates(ctx, in.Attempts, reqs, jobs)
	results := make([]AttemptResult, len(in.Attempts))
	records := make([]*schemas.DeliveryAttempt, len(in.Attempts))
	errs := make([]error, len(in.Attempts))
	var wg sync.WaitGroup
	for i, at := range in.Attempts {
		job, ok := jobs[reqs[i].DeliveryID]
		if !ok {
			results[i] = AttemptResult{DeliveryID: at.DeliveryID, Attempt: at.Attempt, Outcome: OutcomeGone}
			continue
		}
		wg.Go(func() { results[i], records[i], errs[i] = a.attempt(ctx, job, at, admitted[i]) })
	}
	wg.Wait()

	// Record what was sent even if another attempt of the batch failed: a
	// retry of the batch then answers those from the record instead of
	// sending them again.
	var toRecord []schemas.DeliveryAttempt
	var recIdx []int
	for i, r := range records {
		if r != nil {
			toRecord = append(toRecord, *r)
			recIdx = append(recIdx, i)
		}
	}
	if len(toRecord) > 0 {
		ok, err := a.Store.RecordDeliveryAttempts(ctx, toRecord)
		if err != nil {
			return nil, err
		}
		for k, i := range recIdx {
			if !ok[k] {
				// Recorded concurrently by another run (or the delivery was
				// deleted meanwhile): this result still stands for the
				// workflow; the receiver deduplicates on webhook-id.
				a.Logger.Warn("delivery attempt was already recorded", "delivery_id", results[i].DeliveryID,
					"attempt", results[i].Attempt)
			}
			if in.Attempts[i].Record {
				results[i].Record = records[i]
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if err := a.deferThrottled(ctx, results); err != nil {
		return nil, err
	}
	// After the record, so failing_since includes this attempt.
	for i := range results {
		job, ok := jobs[reqs[i].DeliveryID]
		if !ok || job.Delivery.Test || records[i] == nil {
			continue
		}
		if err := a.maybeDisable(ctx, job, &results[i]); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// attempt makes one attempt of one delivery; the record is nil when nothing
// is to be recorded (no request was made, or it was recorded before).
func (a *Deliveries) attempt(ctx context.Context, job schemas.DeliveryJob, in AttemptInput, admitted bool) (
	AttemptResult, *schemas.DeliveryAttempt, error) {
	d := job.Delivery
	res := AttemptResult{DeliveryID: in.DeliveryID, Attempt: in.Attempt}
	if rec := job.Recorded; rec != nil {
		res.Outcome, res.Error = rec.Outcome, truncate(rec.Error, 300)
		if rec.ResponseStatus != nil {
			res.Status = *rec.ResponseStatus
		}
		if rec.NextAttemptAt != nil {
			res.Delay = max(rec.NextAttemptAt.Sub(a.now()), 0)
		}
		if in.Record {
			res.Record = rec
		}
		return res, nil, nil
	}

	if d.State == schemas.DeliveryCancelled {
		// Its target was disabled or deleted meanwhile; its run ends.
		res.Outcome, res.Error = OutcomeGone, "delivery cancelled"
		return res, nil, nil
	}
	// A test send goes out even to a disabled target: it is how an admin
	// checks a receiver before enabling it again.
	if !targetEnabled(job) {
		reason := "webhook disabled"
		if job.Webhook == nil {
			reason = "integration disabled"
		}
		if _, err := a.Store.FailDelivery(ctx, d.ID, reason); err != nil {
			return res, nil, err
		}
		res.Outcome, res.Error = OutcomeFailed, reason
		return res, nil, nil
	}

	rec := &schemas.DeliveryAttempt{DeliveryID: d.ID, Attempt: in.Attempt, StartedAt: a.now(),
		RequestHeaders: map[string]string{}, ResponseHeaders: map[string]string{}}
	var (
		out       httpOutcome
		throttled bool
		err       error
		policy    schemas.WebhookRetryPolicy // integrations: the defaults
	)
	if w := job.Webhook; w != nil {
		policy = schemas.WebhookRetryPolicy{MaxAttempts: w.MaxAttempts, BackoffSeconds: w.BackoffSeconds}
		out, throttled, err = a.attemptWebhook(ctx, job, rec, admitted)
	} else {
		out, throttled, err = a.sendIntegration(ctx, job, rec, admitted)
	}
	if err != nil {
		return res, nil, err
	}
	if throttled {
		res.Outcome, res.Delay = OutcomeThrottled, a.throttleDelay()
		return res, nil, nil
	}

	res.Status = out.status
	rec.Error = out.err
	switch {
	case out.err == "":
		rec.Outcome = OutcomeSucceeded
	case out.permanent:
		rec.Outcome = OutcomeFailed
	case d.Test:
		rec.Outcome = OutcomeFailed // a test send is one attempt
	case in.Try >= policy.MaxAttemptsOrDefault():
		rec.Outcome = OutcomeFailed
		rec.Error = fmt.Sprintf("%s; gave up after %d attempts", out.err, in.Try)
	default:
		rec.Outcome = OutcomeRetrying
		res.Delay = schemas.RetryDelay(policy, in.Try, d.ID, out.retryAfter)
		next := a.now().Add(res.Delay)
		rec.NextAttemptAt = &next
	}
	res.Outcome, res.Error = rec.Outcome, truncate(rec.Error, 300)
	res.gone = out.gone
	return res, rec, nil
}

// targetEnabled tells whether an attempt of job may be made: its target is
// enabled, or it is a test send.
func targetEnabled(job schemas.DeliveryJob) bool {
	switch {
	case job.Delivery.Test:
		return true
	case job.Webhook != nil:
		return job.Webhook.Enabled
	case job.Integration != nil:
		return job.Integration.Enabled
	}
	return false
}

// attemptWebhook opens the webhook's secrets, waits for its rate limit,
// then signs and sends the request.
func (a *Deliveries) attemptWebhook(ctx context.Context, job schemas.DeliveryJob, rec *schemas.DeliveryAttempt,
	admitted bool) (httpOutcome, bool, error) {
	w := job.Webhook
	rec.RequestURL = w.URL
	secrets, extra, err := a.webhookSecrets(w, a.now())
	if err != nil {
		// Retried: a worker with the right ENCRYPTION_KEY delivers it.
		return httpOutcome{err: err.Error()}, false, nil
	}
	if r, limited := rateOf(job); limited && !admitted {
		ok, err := a.waitRate(ctx, r.Key, r.Limit, r.Window)
		if err != nil || !ok {
			return httpOutcome{}, !ok && err == nil, err
		}
	}
	rec.StartedAt = a.now()
	req, err := buildWebhookRequest(job, secrets, extra, a.userAgent(), rec.StartedAt)
	if err != nil {
		return httpOutcome{permanent: true, err: err.Error()}, false, nil
	}
	return a.sendWebhook(ctx, req, rec), false, nil
}

// throttleDelay spreads throttled attempts over the next seconds, so they
// do not all come back at the same instant.
func (a *Deliveries) throttleDelay() time.Duration {
	b := a.RateWaitBudget
	if b <= 0 {
		b = DefaultRateWaitBudget
	}
	return time.Second + rand.N(b)
}

// maybeDisable disables a target after its answer 410 Gone, or when this
// delivery gave up and the target has failed for longer than DisableAfter,
// and sets the notice for admins.
func (a *Deliveries) maybeDisable(ctx context.Context, job schemas.DeliveryJob, res *AttemptResult) error {
	var reason string
	var failingFor time.Duration
	switch {
	case res.gone:
		reason = "receiver answered 410 Gone"
	case res.Outcome == OutcomeFailed:
		failingFor = a.disableAfter()
		reason = fmt.Sprintf("every delivery failed for more than %s", humanDuration(failingFor))
	default:
		return nil
	}
	d := job.Delivery
	t, ok, err := a.Store.DisableDeliveryTarget(ctx, d.WebhookID, d.IntegrationID,
		"disabled automatically: "+reason, failingFor)
	if err != nil || !ok {
		return err
	}
	res.Disabled = disabledNotice(t, res.Error)
	for _, id := range t.Cancelled.Runs {
		res.EndRuns = append(res.EndRuns, id.String())
	}
	a.Logger.Warn("delivery target disabled", "webhook_id", idString(t.WebhookID),
		"integration_id", idString(t.IntegrationID), "reason", t.Reason)
	return nil
}

func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		if n := d / (24 * time.Hour); n != 1 {
			return fmt.Sprintf("%d days", n)
		}
		return "1 day"
	}
	return d.String()
}

// ---- Integrations ----------------------------------------------------------

// integrationRate is how fast each integration type is sent to, after the
// providers' documented or commonly reported limits (peer-systems.md §2.3):
// Slack about one message a second per channel, Discord about 30 a minute per
// webhook, PagerDuty 120 events a minute per routing key.
var integrationRate = map[string]struct {
	limit  int
	window time.Duration
}{
	schemas.IntegrationSlack:     {1, time.Second},
	schemas.IntegrationTeams:     {4, time.Second},
	schemas.IntegrationDiscord:   {30, time.Minute},
	schemas.IntegrationPagerDuty: {120, time.Minute},
	schemas.IntegrationEmail:     {10, time.Second},
}

// sendIntegration makes one attempt through the integration's Sender.
func (a *Deliveries) sendIntegration(ctx context.Context, job schemas.DeliveryJob, rec *schemas.DeliveryAttempt,
	admitted bool) (out httpOutcome, throttled bool, err error) {
	in, d := job.Integration, job.Delivery
	sender := a.Senders[in.Type]
	if sender == nil {
		return httpOutcome{permanent: true, err: fmt.Sprintf("no sender for integration type %q", in.Type)}, false, nil
	}
	if a.Secrets == nil {
		return httpOutcome{err: "cannot open the integration's config: ENCRYPTION_KEY is not configured on the worker"},
			false, nil
	}
	config, oerr := a.Secrets.Open(in.ConfigEnc)
	if oerr != nil {
		return httpOutcome{err: "cannot open the integration's config: " + oerr.Error()}, false, nil
	}
	if r, limited := rateOf(job); limited && !admitted {
		allowed, err := a.waitRate(ctx, r.Key, r.Limit, r.Window)
		if err != nil || !allowed {
			return httpOutcome{}, !allowed && err == nil, err
		}
	}
	ev := notify.Event{DeliveryID: d.ID.String(), Type: d.EventType, OccurredAt: job.EventOccurredAt.UTC(),
		Data: job.EventPayload}
	if d.EventID != nil {
		ev.ID = d.EventID.String()
	}
	if d.Test || len(ev.Data) == 0 {
		ev.Type, ev.Data = notify.EventTest, testEventData
	}
	rec.StartedAt = a.now()
	start := time.Now()
	result, serr := sender.Send(ctx, json.RawMessage(config), ev)
	rec.Latency = time.Since(start)
	rec.RequestURL = result.RequestURL
	rec.RequestBody = result.RequestBody
	rec.ResponseBody = truncate(strings.ToValidUTF8(result.ResponseBody, "\uFFFD"), schemas.ResponseExcerptBytes)
	if result.RequestHeaders != nil {
		rec.RequestHeaders = result.RequestHeaders
	}
	if result.ResponseHeaders != nil {
		rec.ResponseHeaders = result.ResponseHeaders
	}
	if result.Status != 0 {
		status := result.Status
		rec.ResponseStatus = &status
	}
	out = httpOutcome{status: result.Status}
	if serr != nil {
		out.err = serr.Error()
		if out.err == "" {
			out.err = "failed"
		}
		out.permanent = result.Permanent || errors.Is(serr, safehttp.ErrBlockedAddress) ||
			errors.Is(serr, safehttp.ErrInvalidURL)
		out.retryAfter = min(result.RetryAfter, schemas.MaxRetryDelay)
	}
	return out, false, nil
}

// ---- Rate limit ----------------------------------------------------------------

// rateOf is the outbound rate limit an attempt of job is counted against:
// per webhook (its rate_limit_per_second), per integration (its type's
// limit). Test sends are not limited.
func rateOf(job schemas.DeliveryJob) (schemas.OutboundRate, bool) {
	switch {
	case job.Delivery.Test:
		return schemas.OutboundRate{}, false
	case job.Webhook != nil:
		return schemas.OutboundRate{Key: "webhook:" + job.Webhook.ID.String(),
			Limit: max(job.Webhook.RateLimitPerSecond, 1), Window: time.Second}, true
	case job.Integration != nil:
		r, ok := integrationRate[job.Integration.Type]
		return schemas.OutboundRate{Key: "integration:" + job.Integration.ID.String(), Limit: r.limit,
			Window: r.window}, ok
	}
	return schemas.OutboundRate{}, false
}

// takeRates takes, in one statement, the rate-limit slot of the first
// attempt of the batch for each target (a batch of first attempts has one
// delivery per target). It answers which attempts were admitted; the others
// wait for their slot one by one (waitRate). If the counter cannot be
// reached every attempt goes out (see waitRate).
func (a *Deliveries) takeRates(ctx context.Context, attempts []AttemptInput, reqs []schemas.DeliveryJobRequest,
	jobs map[uuid.UUID]schemas.DeliveryJob) []bool {
	admitted := make([]bool, len(attempts))
	var rates []schemas.OutboundRate
	first := map[string]int{} // key → index of the attempt that takes in the batch
	for i := range attempts {
		job, ok := jobs[reqs[i].DeliveryID]
		if !ok || job.Recorded != nil || !targetEnabled(job) || job.Delivery.State == schemas.DeliveryCancelled {
			continue
		}
		r, limited := rateOf(job)
		if !limited {
			continue
		}
		if _, dup := first[r.Key]; !dup {
			first[r.Key] = i
			rates = append(rates, r)
		}
	}
	if len(rates) == 0 {
		return admitted
	}
	taken, err := a.Store.TakeOutboundRates(ctx, rates, time.Now())
	if err != nil {
		a.Logger.Warn("outbound rate limit unavailable; sending anyway", "err", err)
	}
	for key, i := range first {
		admitted[i] = err != nil || taken[key]
	}
	return admitted
}

// waitRate takes one request of key's limit (per window, shared by every
// worker through PostgreSQL), waiting while the limit is reached, for at most
// RateWaitBudget. Within a process one waiter per key polls the counter; the
// others queue behind it. If the counter cannot be reached the request goes
// out (the limit protects receivers from bursts; a database outage would
// fail the attempt's record anyway).
func (a *Deliveries) waitRate(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	budget := a.RateWaitBudget
	if budget <= 0 {
		budget = DefaultRateWaitBudget
	}
	deadline := time.Now().Add(budget)
	g, _ := a.gates.LoadOrStore(key, make(chan struct{}, 1))
	gate := g.(chan struct{})
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case gate <- struct{}{}:
	case <-timer.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-gate }()
	step := max(window/time.Duration(limit)/2, 20*time.Millisecond)
	for {
		take, err := a.Rate.Take(ctx, key, schemas.RateWindowAt(time.Now(), window), limit)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			a.Logger.Warn("outbound rate limit unavailable; sending anyway", "key", key, "err", err)
			return true, nil
		}
		if take.Allowed {
			return true, nil
		}
		if time.Now().Add(step).After(deadline) {
			return false, nil
		}
		select {
		case <-time.After(step):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// ---- Redelivery and tests --------------------------------------------------

// DeliveryProgressResult is where a delivery stands.
type DeliveryProgressResult struct {
	Found         bool
	EventType     string
	WebhookID     string
	IntegrationID string
	State         string
	Attempts      int
}

// DeliveryProgress reads where a delivery stands (a redelivery continues
// its attempt numbers).
func (a *Deliveries) DeliveryProgress(ctx context.Context, deliveryID string) (DeliveryProgressResult, error) {
	id, err := uuid.Parse(deliveryID)
	if err != nil {
		return DeliveryProgressResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bad delivery id %q", deliveryID), "BadDeliveryID", err)
	}
	p, err := a.Store.GetDeliveryProgress(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) {
		return DeliveryProgressResult{}, nil
	}
	if err != nil {
		return DeliveryProgressResult{}, err
	}
	return DeliveryProgressResult{Found: true, EventType: p.EventType, WebhookID: idString(p.WebhookID),
		IntegrationID: idString(p.IntegrationID), State: p.State, Attempts: p.Attempts}, nil
}

// TestDeliveryInput names a test delivery to create and its target (exactly
// one of WebhookID and IntegrationID).
type TestDeliveryInput struct {
	DeliveryID    string
	WebhookID     string
	IntegrationID string
}

// CreateTestDelivery creates a test delivery (idempotent on its id). A
// target that does not exist is a non-retryable "NotFound" error.
func (a *Deliveries) CreateTestDelivery(ctx context.Context, in TestDeliveryInput) error {
	id, err := uuid.Parse(in.DeliveryID)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("bad delivery id %q", in.DeliveryID),
			"BadDeliveryID", err)
	}
	var wid, iid *uuid.UUID
	for _, p := range []struct {
		s   string
		dst **uuid.UUID
	}{{in.WebhookID, &wid}, {in.IntegrationID, &iid}} {
		if p.s == "" {
			continue
		}
		v, err := uuid.Parse(p.s)
		if err != nil {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("bad target id %q", p.s), "NotFound", err)
		}
		*p.dst = &v
	}
	err = a.Store.InsertTestDelivery(ctx, id, wid, iid)
	if errors.Is(err, schemas.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "NotFound", err)
	}
	return err
}

// ---- Notices to admins ---------------------------------------------------------

// Notice is a message to admins through every enabled integration, such as
// "webhook X was disabled". It holds no secret (names and ids only).
type Notice struct {
	Title    string
	Text     string
	Severity string // notify.Severity*
	// Key is stable per subject, so providers that group (PagerDuty's
	// dedup_key) group repeats.
	Key string
	// ExcludeIntegrationID skips the integration the notice is about.
	ExcludeIntegrationID string
}

func disabledNotice(t schemas.DisabledTarget, lastError string) *Notice {
	n := &Notice{Severity: notify.SeverityWarning}
	kind, id, api := "Webhook", "", "/api/webhooks/"
	if t.WebhookID != nil {
		id = t.WebhookID.String()
	} else if t.IntegrationID != nil {
		kind, id, api = "Integration", t.IntegrationID.String(), "/api/integrations/"
		n.ExcludeIntegrationID = id
	}
	n.Title = fmt.Sprintf("%s %q was disabled", kind, t.Name)
	n.Text = fmt.Sprintf("StreamSpace stopped delivering to %s %s (%s): %s.", strings.ToLower(kind), t.Name, id, t.Reason)
	if lastError != "" {
		n.Text += " Last error: " + lastError + "."
	}
	n.Text += fmt.Sprintf(` Fix the receiver, then enable it again with PATCH %s%s {"enabled": true}.`, api, id)
	n.Key = "streamspace/disabled/" + id
	return n
}

// NoticeResult counts the integrations a notice reached.
type NoticeResult struct {
	Sent   int
	Failed int
}

// NotifyAdmins sends a notice through every enabled integration (once each,
// in parallel; a failure is logged and counted, not retried: notices are
// best effort).
func (a *Deliveries) NotifyAdmins(ctx context.Context, n Notice) (NoticeResult, error) {
	a.init()
	var exclude *uuid.UUID
	if id, err := uuid.Parse(n.ExcludeIntegrationID); err == nil {
		exclude = &id
	}
	recipients, err := a.Store.NoticeRecipients(ctx, exclude)
	if err != nil {
		return NoticeResult{}, err
	}
	data, err := json.Marshal(map[string]string{"title": n.Title, "text": n.Text, "severity": n.Severity})
	if err != nil {
		return NoticeResult{}, err
	}
	ev := notify.Event{DeliveryID: n.Key, Type: notify.EventNotice, OccurredAt: a.now().UTC(), Data: data}
	var mu sync.Mutex
	var res NoticeResult
	var wg sync.WaitGroup
	for _, in := range recipients {
		wg.Go(func() {
			err := a.sendNotice(ctx, in, ev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				a.Logger.Warn("notice to admins not sent", "integration_id", in.ID, "type", in.Type, "err", err)
				return
			}
			res.Sent++
		})
	}
	wg.Wait()
	return res, nil
}

func (a *Deliveries) sendNotice(ctx context.Context, in schemas.Integration, ev notify.Event) error {
	sender := a.Senders[in.Type]
	if sender == nil {
		return fmt.Errorf("no sender for integration type %q", in.Type)
	}
	if a.Secrets == nil {
		return errors.New("ENCRYPTION_KEY is not configured on the worker")
	}
	config, err := a.Secrets.Open(in.ConfigEnc)
	if err != nil {
		return err
	}
	_, err = sender.Send(ctx, json.RawMessage(config), ev)
	return err
}
