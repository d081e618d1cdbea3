package tracker

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redisleak/redisleak/internal/track"
)

func TestHandler(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	tok := newScope(tr, "127.0.0.1:6379").Checkout(context.Background(), track.KindConn, "", 0)
	defer tok.Release()
	h := Handler(tr)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/redisleak", nil))
	text := rec.Body.String()
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") ||
		!strings.Contains(text, "1 outstanding") || !strings.Contains(text, "1 × conn") || !strings.Contains(text, "TestHandler") {
		t.Fatalf("text page:\n%s", text)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/redisleak?format=json", nil))
	var page struct {
		Trackers []struct {
			Stats  Stats  `json:"stats"`
			Report Report `json:"report"`
		} `json:"trackers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatalf("JSON page: %v\n%s", err, rec.Body.String())
	}
	if len(page.Trackers) != 1 || page.Trackers[0].Stats.Outstanding != 1 || len(page.Trackers[0].Report.Groups) != 1 ||
		page.Trackers[0].Report.Groups[0].Kind != KindConn || !strings.HasSuffix(page.Trackers[0].Report.Groups[0].Site.Function, "TestHandler") {
		t.Fatalf("JSON page: %+v", page)
	}
}
