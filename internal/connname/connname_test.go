package connname

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, n := range []Name{
		{Client: "orders-api", PID: 4242, Socket: 17},
		{Client: "a.p1.s2", PID: 1, Socket: 0}, // a client name that looks like a socket name
		{Client: "x", PID: 99999, Socket: 1 << 40},
	} {
		got, ok := Parse(n.String())
		if !ok || got != n {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", n.String(), got, ok, n)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "orders", "orders.p12", "orders.s3", ".p1.s2", "orders.p1.s", "orders.px.s1", "orders.p1.s99999999999999999999999"} {
		if n, ok := Parse(s); ok {
			t.Errorf("Parse(%q) = %+v, true; want false", s, n)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"":             "redis",
		"orders api":   "orders_api",
		"line\nbreak":  "line_break",
		"ünïcode":      "_n_code",
		"ok-name_1.2:": "ok-name_1.2:",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Name{Client: "my app", PID: 3, Socket: 4}).String(); got != "my_app.p3.s4" {
		t.Errorf("String of a name with a space = %q", got)
	}
}
