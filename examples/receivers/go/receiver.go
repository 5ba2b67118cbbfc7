// A fluxhook receiver in Go, standard library only.
//
//	go build -o receiver receiver.go
//	WEBHOOK_SECRET=whsec_... ./receiver 9000
//
// It listens on 127.0.0.1:PORT (0 picks a free port; the first line printed,
// "listening on 127.0.0.1:N", says which). For each POST it checks both
// signatures fluxhook sends, X-Workflux-Signature and the Standard Webhooks
// webhook-signature, prints one line
//
//	delivery event=evt_... attempt=1 verified
//	delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...
//
// and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
// several secrets separated by spaces (while you rotate: the new one and the
// old one); each signature must then verify with one of them.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// toleranceSeconds is how far webhook-timestamp may be from now.
const toleranceSeconds = 5 * 60

// verifyWorkflux checks X-Workflux-Signature: lowercase hex HMAC-SHA256 of
// the raw body, keyed with the whole secret string ("whsec_" included). It
// returns "" when it matches, else what is wrong.
func verifyWorkflux(secret string, body []byte, signature string) string {
	if signature == "" {
		return "X-Workflux-Signature: missing"
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	expected := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(expected), []byte(strings.ToLower(strings.TrimSpace(signature)))) {
		return "X-Workflux-Signature: does not match"
	}
	return ""
}

// verifyStandard checks webhook-signature (Standard Webhooks): "v1," +
// base64 HMAC-SHA256 of "webhook-id.webhook-timestamp.body", keyed with the
// base64-decoded part of the secret after "whsec_". Several space-separated
// signatures arrive while a secret rotation runs: any one matching is
// enough. It returns "" when valid, else what is wrong.
func verifyStandard(secret string, h http.Header, body []byte, now time.Time) string {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return "webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature"
	}
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sent < 0 {
		return "webhook-timestamp: not a number"
	}
	if d := now.Unix() - sent; d > toleranceSeconds || d < -toleranceSeconds {
		return fmt.Sprintf("webhook-timestamp: more than %d s from now", toleranceSeconds)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "webhook-signature: the secret is not whsec_ followed by base64"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	expected := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, entry := range strings.Fields(sigs) {
		version, sig, _ := strings.Cut(entry, ",")
		if version == "v1" && hmac.Equal([]byte(expected), []byte(sig)) {
			return ""
		}
	}
	return "webhook-signature: does not match"
}

// verifyDelivery runs both checks, each passing with any one of secrets. It
// returns "" or what is wrong (as found with the first secret).
func verifyDelivery(secrets []string, h http.Header, body []byte) string {
	checks := []func(string) string{
		func(s string) string { return verifyWorkflux(s, body, h.Get("X-Workflux-Signature")) },
		func(s string) string { return verifyStandard(s, h, body, time.Now()) },
	}
	for _, check := range checks {
		first := ""
		passed := false
		for i, s := range secrets {
			p := check(s)
			if p == "" {
				passed = true
				break
			}
			if i == 0 {
				first = p
			}
		}
		if !passed {
			return first
		}
	}
	return ""
}

func main() {
	secrets := strings.Fields(os.Getenv("WEBHOOK_SECRET"))
	valid := len(secrets) > 0
	for _, s := range secrets {
		valid = valid && strings.HasPrefix(s, "whsec_")
	}
	if len(os.Args) != 2 || !valid {
		fmt.Fprintln(os.Stderr, "usage: WEBHOOK_SECRET=whsec_... receiver PORT")
		os.Exit(2)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		// fluxhook's events are at most 256 KiB; read the raw bytes, verify, then parse.
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		where := fmt.Sprintf("event=%s attempt=%s", orDash(r.Header.Get("X-Workflux-Event-Id")),
			orDash(r.Header.Get("X-Workflux-Attempt")))
		problem := verifyDelivery(secrets, r.Header, body)
		if problem != "" {
			fmt.Printf("delivery %s not verified: %s\n", where, problem)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("delivery %s verified\n", where)
		// Handle json.Unmarshal(body, ...) here, or queue it and answer at once.
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver: cannot listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	fmt.Fprintln(os.Stderr, http.Serve(ln, nil))
	os.Exit(1)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
