package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance/client"
)

// apiPrefix is the KFP REST prefix the client commands use.
const apiPrefix = client.APIPrefix

// apiClient is the client commands' view of the shared KFP client (appliance/client): the
// box's credentials found as creds.go describes, errors turned into the CLI's messages and
// exit codes. (serverURL, which reads --server and KFPBOX_SERVER, lives in gpu.go.)
type apiClient struct {
	base  string
	http  *http.Client
	creds credentials
	kfp   *client.Client
	// err is a problem found while loading the credentials, returned by the first request.
	err error
}

func newAPIClient(cmd *cobra.Command) *apiClient {
	creds, err := loadCredentials(cmd)
	return apiClientWith(cmd, creds, err)
}

// apiClientWith is newAPIClient with credentials already loaded.
func apiClientWith(cmd *cobra.Command, creds credentials, err error) *apiClient {
	c := &apiClient{base: serverURL(cmd), http: creds.httpClient(60 * time.Second), creds: creds, err: err}
	if err == nil {
		c.kfp, c.err = client.New(client.Options{Server: c.base, Token: creds.token, TokenSource: creds.source, CAPEM: creds.caPEM})
		if c.err != nil {
			c.err = usageErr("--server %q: %v", c.base, c.err)
		}
	}
	return c
}

// stream sends a GET without a deadline (log streams end when their task does) and returns
// the response when it is 200.
func (c *apiClient) stream(ctx context.Context, path string) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	resp, err := c.kfp.Stream(ctx, path)
	return resp, c.wrap(err)
}

// wrap turns the shared client's errors into the CLI's: unreachable servers, 401s with how
// to get a token, other answers as apiError.
func (c *apiClient) wrap(err error) error {
	var ce *client.Error
	var un *client.Unreachable
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		if ce.Status == http.StatusUnauthorized {
			return &apiError{Status: ce.Status, Message: c.creds.explain401(c.base).Error()}
		}
		return &apiError{Status: ce.Status, Message: ce.Message}
	case errors.As(err, &un):
		return fmt.Errorf("cannot reach kfp-box at %s (is 'kfp-box serve' running?): %w", c.base, un.Err)
	case errors.Is(err, client.ErrUsage):
		return usageErr("%v", err)
	}
	return err
}

// statusError turns a non-2xx answer into an apiError, explaining a 401.
func (c *apiClient) statusError(resp *http.Response, raw []byte) error {
	if resp.StatusCode == http.StatusUnauthorized {
		return &apiError{Status: resp.StatusCode, Message: c.creds.explain401(c.base).Error()}
	}
	return &apiError{Status: resp.StatusCode, Message: client.ErrorMessage(resp.Status, raw)}
}

// apiError is an answer other than 2xx. 4xx answers are the user's input (exit 2); the
// rest are failures (exit 1).
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return e.Message }

// apiExit turns an API error into the CLI's exit codes.
func apiExit(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return &ExitError{Code: 2, Err: err}
	}
	return err
}

// do sends a JSON request and decodes the JSON answer into out (when non-nil).
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	if c.err != nil {
		return c.err
	}
	return c.wrap(c.kfp.Do(ctx, method, path, body, out))
}

// upload posts a file as the multipart field "uploadfile" with query parameters.
func (c *apiClient) upload(ctx context.Context, path string, q url.Values, filename string, data []byte, out any) error {
	if c.err != nil {
		return c.err
	}
	return c.wrap(c.kfp.Upload(ctx, path, q, filename, data, out))
}

// experimentID resolves --experiment: an id, or a display name (created when missing, as
// the SDK's create_run_from_pipeline_package does). Empty means the Default experiment.
func (c *apiClient) experimentID(ctx context.Context, nameOrID string, create bool) (string, error) {
	if nameOrID == "" {
		return "", nil
	}
	var byID map[string]any
	if err := c.do(ctx, http.MethodGet, "/experiments/"+url.PathEscape(nameOrID), nil, &byID); err == nil {
		return nameOrID, nil
	}
	f, _ := json.Marshal(map[string]any{"predicates": []any{map[string]any{"operation": "EQUALS", "key": "display_name", "string_value": nameOrID}}})
	var l struct {
		Experiments []struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"experiments"`
	}
	if err := c.do(ctx, http.MethodGet, "/experiments?filter="+url.QueryEscape(string(f)), nil, &l); err != nil {
		return "", err
	}
	if len(l.Experiments) > 0 {
		return l.Experiments[0].ExperimentID, nil
	}
	if !create {
		return "", &ExitError{Code: 2, Err: fmt.Errorf("no experiment named or with id %q", nameOrID)}
	}
	var e struct {
		ExperimentID string `json:"experiment_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/experiments", map[string]any{"display_name": nameOrID}, &e); err != nil {
		return "", err
	}
	return e.ExperimentID, nil
}

// outputFlag adds --output table|json.
func outputFlag(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("output", "o", "table", "output format: table or json")
}

func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return usageErr("--output %q: want table or json", o)
	}
	return nil
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortTime renders an RFC 3339 time from the API for tables.
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Unix() == 0 {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
