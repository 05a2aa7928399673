package tyntecsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/tyntec"
)

// The verification methods a generated login may try before its OTP, named
// as otpscope names their channels.
const (
	MethodSilent = "SILENT"
	MethodPush   = "PUSH"
)

// otpscope's endpoints the simulated app's backend calls (internal/ingest
// serves them).
const (
	SilentOutcomesPath = "/silent-auth/outcomes"
	TrackPath          = "/otps/track"
)

// AppRedirectURI is the simulated app's OAuth redirect_uri. The app reads
// the authorize redirect's Location; nothing is ever fetched from it.
const AppRedirectURI = "https://app.example/silent-auth/callback"

// login is one generated login: what its OTP would be, and the method it
// tries first ("" for none).
type login struct {
	id     string // the correlation (journey) id
	method string
	to     string
	v1     bool
	voice  bool
	prof   tyntec.Profile
	prio   tyntec.Priority
	tfaID  string
}

// startLogin gives l its correlation id. Callers hold s.mu.
func (s *Sim) startLogin(l *login) {
	s.logins++
	// Random like OTP IDs: a restarted demo must not reuse a journey id.
	l.id = "login-" + uuid.NewString()
}

// app is the simulated app: it calls the simulator's silent-auth and push
// endpoints over HTTP as a real app would, and its backend reports to
// otpscope.
type app struct {
	s      *Sim
	t      Traffic
	base   string
	client *http.Client
}

func (s *Sim) newApp(t Traffic) *app {
	a := &app{s: s, t: t, base: strings.TrimRight(t.SimURL, "/"), client: &http.Client{
		Timeout: 2 * time.Minute,
		// The authorize redirect goes to the app's redirect_uri: read, never followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if a.base == "" {
		a.base = "http://tyntecsim.invalid"
		a.client.Transport = handlerTransport{s.handler}
	}
	return a
}

// handlerTransport serves requests with a handler in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sr := r.Clone(r.Context())
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	sr.RequestURI = r.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sr)
	return rec.Result(), nil
}

// silentClient is the silent-auth client the app uses: the first by id.
func (a *app) silentClient() (id, secret string) {
	clients := a.s.cfg.silentAuth().Clients
	ids := make([]string, 0, len(clients))
	for id := range clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids[0], clients[ids[0]]
}

// silentLogin tries Silent Authentication (authorize → token → userinfo),
// reports the outcome to otpscope and sends the login's OTP unless the
// number was verified.
func (a *app) silentLogin(ctx context.Context, l *login) {
	s := a.s
	id, secret := a.silentClient()
	at := &SilentTruth{
		AttemptID: "sa-" + uuid.NewString(), CorrelationID: l.id, ClientID: id,
		Scope: ScopePhoneVerify, LoginHint: strings.TrimPrefix(l.to, "+"), ProfileID: l.prof.ID,
	}
	s.mu.Lock()
	at.Seq = s.forgotten.Silent + uint64(len(s.silent)) + 1
	at.Started = s.clock.now()
	s.silent = append(s.silent, at)
	s.mu.Unlock()

	result, code, mobile, err := a.silentFlow(ctx, at, id, secret)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if err != nil { // only when the simulator is stopping: the attempt stays under way
		if ctx.Err() == nil {
			s.log.Warn("simulated app: silent auth", "err", err)
		}
		return
	}
	at.Finished, at.Result, at.Error, at.MobileID = s.clock.now(), result, code, mobile
	a.report(at)
	if result == SilentVerified {
		s.loginsDone++
		return
	}
	a.sendOTP(l)
}

// silentFlow runs one attempt and returns its result and error code as the
// app reports them; err only for a failed HTTP exchange.
func (a *app) silentFlow(ctx context.Context, at *SilentTruth, clientID, secret string) (result, code, mobile string, err error) {
	state := strconv.FormatUint(at.Seq, 36) + "-" + randomToken()[:8]
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "state": {state},
		"scope": {ScopeOpenID + " " + at.Scope}, "redirect_uri": {AppRedirectURI}, "login_hint": {at.LoginHint},
	}
	resp, _, err := a.do(ctx, http.MethodGet, SilentAuthPath+"/authorize?"+q.Encode(), nil, nil)
	if err != nil {
		return "", "", "", err
	}
	if resp.StatusCode != http.StatusFound {
		return SilentError, fmt.Sprintf("authorize_http_%d", resp.StatusCode), "", nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("state") != state {
		return SilentError, "authorize_bad_redirect", "", nil
	}
	if e := loc.Query().Get("error"); e != "" {
		return SilentError, e, "", nil
	}

	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {AppRedirectURI},
		"client_id": {clientID}, "client_secret": {secret},
	}
	resp, body, err := a.do(ctx, http.MethodPost, SilentAuthPath+"/token", strings.NewReader(form.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "apiKey": {a.s.cfg.APIKeys[0]},
	})
	if err != nil {
		return "", "", "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.Unmarshal(body, &tok)
	if resp.StatusCode != http.StatusOK {
		return SilentError, "token_" + cmpOr(tok.Error, strconv.Itoa(resp.StatusCode)), "", nil
	}

	resp, body, err = a.do(ctx, http.MethodGet, SilentAuthPath+"/userinfo", nil, http.Header{"Authorization": {"Bearer " + tok.AccessToken}})
	if err != nil {
		return "", "", "", err
	}
	var info struct {
		MobileID string `json:"mobile_id"`
		Verified string `json:"phone_number_verified"`
		Error    string `json:"error"`
	}
	_ = json.Unmarshal(body, &info)
	switch {
	case resp.StatusCode != http.StatusOK:
		return SilentError, "userinfo_" + cmpOr(info.Error, strconv.Itoa(resp.StatusCode)), "", nil
	case info.Verified == "true":
		return SilentVerified, "", info.MobileID, nil
	default:
		return SilentNotVerified, "", info.MobileID, nil
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pushLogin creates an approval request for the user (its correlation id
// in hidden_details) and sends the login's OTP when it is denied or
// expires.
func (a *app) pushLogin(ctx context.Context, l *login) {
	s := a.s
	form := url.Values{
		"message":                       {"Approve your login?"},
		"details[Login]":                {l.id},
		"hidden_details[correlationId]": {l.id},
		"seconds_to_expire":             {strconv.Itoa(a.t.PushSecondsToExpire)},
	}
	resp, body, err := a.do(ctx, http.MethodPost, PushPath+"/users/"+l.tfaID+"/approval_requests", strings.NewReader(form.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, PushAPIKeyHeader: {a.s.cfg.APIKeys[0]},
	})
	var created struct {
		Request struct {
			UUID string `json:"uuid"`
		} `json:"approval_request"`
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("create approval request: %d %s", resp.StatusCode, body)
	}
	if err == nil {
		err = json.Unmarshal(body, &created)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	p, ok := s.pushByID[created.Request.UUID]
	if err != nil || !ok {
		if ctx.Err() == nil {
			s.log.Warn("simulated app: push approval", "err", err)
		}
		return
	}
	p.generated = true
	// The app hears the final status (a callback to it would tell it).
	p.onSettle = func(status string, _ time.Time) {
		if status == PushApproved {
			s.loginsDone++
			return
		}
		a.sendOTP(l)
	}
	if p.status != PushPending { // settled while the answer was on its way
		p.onSettle(p.status, p.updated)
	}
}

// sendOTP sends the login's OTP and, after a method, tells otpscope its
// correlation id. Callers hold s.mu.
func (a *app) sendOTP(l *login) {
	s := a.s
	s.loginsDone++
	var o *otp
	if l.v1 {
		ch := events.ChannelSMS
		if l.voice {
			ch = events.ChannelVoice
		}
		o = s.createOTP(newOTP{api: APIv1, to: l.to, channels: []events.Channel{ch}, allowed: v1Attempts, codeLen: v1PinLength, expiry: v1Expire, generated: true})
	} else if n, ok := s.v4OTP(l.to, "", "", l.prof, l.prio); ok {
		n.generated = true
		o = s.createOTP(n)
	}
	if o == nil {
		return
	}
	o.journeyID = l.id
	if l.method != "" {
		o.track = a.post(o.id, TrackPath, trackReport{OTPID: o.id, API: o.api, ProfileID: o.profileID, CorrelationID: l.id, At: formatV1Time(o.created)})
	}
}

// trackReport is the body of POST /otps/track: events.Track with the
// login's correlationId.
type trackReport struct {
	OTPID         string `json:"otpId"`
	API           string `json:"api"`
	ProfileID     string `json:"profileId,omitempty"`
	CorrelationID string `json:"correlationId"`
	// At is when the app sent the OTP, in simulated time like every
	// timestamp the simulator gives (otpscope would use its own clock).
	At string `json:"at"`
}

// silentOutcomeReport is the body of POST /silent-auth/outcomes.
type silentOutcomeReport struct {
	AttemptID     string `json:"attemptId"`
	CorrelationID string `json:"correlationId"`
	Scope         string `json:"scope"`
	StartedAt     string `json:"startedAt"`
	FinishedAt    string `json:"finishedAt"`
	Result        string `json:"result"`
	Error         string `json:"error,omitempty"`
	LoginHint     string `json:"loginHint,omitempty"`
	MobileID      string `json:"mobileId,omitempty"`
	ProfileID     string `json:"profileId,omitempty"`
}

// report posts a finished attempt to otpscope. Callers hold s.mu.
func (a *app) report(at *SilentTruth) {
	at.Report = a.post(at.AttemptID, SilentOutcomesPath, silentOutcomeReport{
		AttemptID: at.AttemptID, CorrelationID: at.CorrelationID, Scope: at.Scope,
		StartedAt: formatV1Time(at.Started), FinishedAt: formatV1Time(at.Finished),
		Result: at.Result, Error: at.Error, LoginHint: at.LoginHint, MobileID: at.MobileID, ProfileID: at.ProfileID,
	})
}

// post queues a JSON POST to otpscope's path, retried like a webhook; nil
// when no otpscope is configured. Callers hold s.mu.
func (a *app) post(key, path string, v any) *Delivery {
	if a.t.OTPScopeURL == "" {
		return nil
	}
	body, err := json.Marshal(v)
	if err != nil {
		a.s.log.Error("encode report", "err", err)
		return nil
	}
	d := &Delivery{URL: strings.TrimRight(a.t.OTPScopeURL, "/") + path}
	a.s.hooks.enqueue(hookJob{key: key, record: d.record, url: d.URL, headers: copyHeaders(a.t.OTPScopeHeaders), body: body, copies: 1})
	return d
}

// do makes one request to the simulator and reads the answer.
func (a *app) do(ctx context.Context, method, path string, body io.Reader, h http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range h {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Set("User-Agent", "tyntecsim-app")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, errors.Join(errors.New("read answer"), err)
	}
	return resp, raw, nil
}
