package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// maxCandidates bounds the ids an ambiguous prefix's message lists.
const maxCandidates = 8

// resolveRunID turns what the user typed for a run into its id: the id itself, or a prefix
// of exactly one run's id (as git takes a short commit hash). No match, or a prefix that
// several runs share, is a usage error (exit 2) in one line; the latter lists the ids.
func (c *apiClient) resolveRunID(ctx context.Context, arg string) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	if arg == "" || strings.ContainsAny(arg, "/?#% \t\n") {
		return "", usageErr("%q is not a run id or id prefix", arg)
	}
	err := c.do(ctx, http.MethodGet, "/runs/"+url.PathEscape(arg), nil, nil)
	if err == nil {
		return arg, nil
	}
	if ae, ok := err.(*apiError); !ok || ae.Status != http.StatusNotFound {
		return "", apiExit(err)
	}
	ids, err := c.runIDsWithPrefix(ctx, arg)
	if err != nil {
		return "", apiExit(err)
	}
	switch len(ids) {
	case 0:
		return "", usageErr("no run with id or id prefix %q", arg)
	case 1:
		return ids[0], nil
	}
	sort.Strings(ids)
	shown := ids
	more := ""
	if len(shown) > maxCandidates {
		shown, more = shown[:maxCandidates], fmt.Sprintf(" and %d more", len(ids)-maxCandidates)
	}
	return "", usageErr("run id prefix %q is ambiguous: %s%s", arg, strings.Join(shown, ", "), more)
}

// runIDsWithPrefix lists every run (archived ones too) and returns the ids that start with
// prefix.
func (c *apiClient) runIDsWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	var ids []string
	tok := ""
	for {
		q := url.Values{"page_size": {"200"}}
		if tok != "" {
			q.Set("page_token", tok)
		}
		var page struct {
			Runs []struct {
				RunID string `json:"run_id"`
			} `json:"runs"`
			NextPageToken string `json:"next_page_token"`
		}
		if err := c.do(ctx, http.MethodGet, "/runs?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for _, r := range page.Runs {
			if strings.HasPrefix(r.RunID, prefix) {
				ids = append(ids, r.RunID)
			}
		}
		if page.NextPageToken == "" || len(page.Runs) == 0 {
			return ids, nil
		}
		tok = page.NextPageToken
	}
}
