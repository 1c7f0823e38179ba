package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// postJSON POSTs body as JSON to a chat webhook URL (Teams, Discord) and
// classifies the answer: 2xx succeeds; 408, 429 and 5xx are retried; other
// 4xx are permanent.
func (d Deps) postJSON(ctx context.Context, provider, rawURL string, body any, red redactor) (Result, error) {
	var res Result
	data, err := json.Marshal(body)
	if err != nil {
		return Result{Permanent: true}, fmt.Errorf("%s: encode message: %w", provider, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(data))
	if err != nil {
		return Result{Permanent: true}, scrubbed(red, provider+": ", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.httpClient(&res, red, nil).Do(req)
	if err != nil {
		return res, scrubbed(red, provider+": ", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return res, nil
	}
	res.Permanent = permanentStatus(resp.StatusCode)
	return res, statusError(red, provider, &res, res.ResponseBody)
}
