package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// apiClient calls the API of a server the test runs, as a user would.
type apiClient struct {
	api, token string
	http       http.Client
}

func (c *apiClient) ready() bool {
	resp, err := c.http.Get(c.api + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *apiClient) do(method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, c.api+path, strings.NewReader(body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

func (c *apiClient) login(t testing.TB, user, password string) string {
	status, body := c.do("POST", "/api/auth/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, password))
	require.Equal(t, http.StatusOK, status, body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out.AccessToken
}
