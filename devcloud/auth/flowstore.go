package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"labelstation/devcloud/records"
)

// The authorization code flow keeps its consent requests, codes and application access tokens
// as records, so any devcloud on the store can finish a flow another began and see a token
// another revoked: the browser's authorize and the application's token exchange may reach
// different replicas behind a load balancer, or either side of a restart. Without a durable
// store they are records in memory.
const (
	kindAuthReq   = "auth.authreq"   // request id → storedAuthReq
	kindAuthCode  = "auth.code"      // hashToken(code) → storedCode; the code itself is never stored
	kindAppAccess = "auth.appaccess" // token id → storedAccess of an application's access token
)

type storedAuthReq struct {
	ClientID        string    `json:"client_id"`
	RedirectURI     string    `json:"redirect_uri"`
	State           string    `json:"state,omitempty"`
	Nonce           string    `json:"nonce,omitempty"`
	Scopes          []string  `json:"scopes"`
	ResponseMode    string    `json:"response_mode,omitempty"`
	Challenge       string    `json:"challenge"`
	ChallengeMethod string    `json:"challenge_method"`
	Created         time.Time `json:"created"`
	UserID          string    `json:"user_id,omitempty"`
	AuthTime        time.Time `json:"auth_time,omitempty"`
	Done            bool      `json:"done,omitempty"`
	CodeHash        string    `json:"code_hash,omitempty"`
	CodeIssued      time.Time `json:"code_issued,omitempty"`
	Exchanged       bool      `json:"exchanged,omitempty"`
	Family          string    `json:"family,omitempty"`
}

// storedCode finds a code's request; once exchanged and its request deleted, it is spent and
// remembered until it would have expired, so its reuse revokes what it yielded (RFC 6749 §4.1.2).
type storedCode struct {
	Request string    `json:"request,omitempty"`
	Spent   bool      `json:"spent,omitempty"`
	Family  string    `json:"family,omitempty"`
	Expires time.Time `json:"expires"`
}

func (r *authRequest) stored() storedAuthReq {
	st := storedAuthReq{ClientID: r.clientID, RedirectURI: r.redirectURI, State: r.state, Nonce: r.nonce, Scopes: r.scopes,
		ResponseMode: string(r.responseMode), Created: r.created, UserID: r.userID, AuthTime: r.authTime, Done: r.done,
		CodeHash: r.codeHash, CodeIssued: r.codeIssued, Exchanged: r.exchanged, Family: r.family}
	if r.challenge != nil {
		st.Challenge, st.ChallengeMethod = r.challenge.Challenge, string(r.challenge.Method)
	}
	return st
}

func (st storedAuthReq) request(id string) *authRequest {
	return &authRequest{id: id, clientID: st.ClientID, redirectURI: st.RedirectURI, state: st.State, nonce: st.Nonce,
		scopes: st.Scopes, responseMode: oidc.ResponseMode(st.ResponseMode), created: st.Created, userID: st.UserID,
		authTime: st.AuthTime, done: st.Done, codeHash: st.CodeHash, codeIssued: st.CodeIssued, exchanged: st.Exchanged,
		family:    st.Family,
		challenge: &oidc.CodeChallenge{Challenge: st.Challenge, Method: oidc.CodeChallengeMethod(st.ChallengeMethod)}}
}

// flowRecords is where the code flow keeps its records: the server's store, else memory.
func (s *store) flowRecords() records.Store {
	if s.rec != nil {
		return s.rec
	}
	s.flowMemOnce.Do(func() { s.flowMem = records.NewMem() })
	return s.flowMem
}

// getAuthRequest reads request id; a missing one is errNotFound.
func (s *store) getAuthRequest(id string) (*authRequest, error) {
	var st storedAuthReq
	err := records.GetJSON(s.flowRecords(), kindAuthReq, id, &st)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return nil, fmt.Errorf("auth: authorization request: %w", errNotFound)
	case err != nil:
		return nil, fmt.Errorf("auth: authorization request: %w", err)
	}
	return st.request(id), nil
}

// updateAuthRequest changes request id with fn, atomically: of two replicas deciding or
// exchanging the same request, one sees the other's change. A missing request is errNotFound;
// an error of fn stores nothing and is returned.
func (s *store) updateAuthRequest(id string, fn func(r *authRequest) error) (*authRequest, error) {
	var out *authRequest
	err := s.flowRecords().UpdateRecord(kindAuthReq, id, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("auth: authorization request: %w", errNotFound)
		}
		var st storedAuthReq
		if err := json.Unmarshal(old, &st); err != nil {
			return nil, err
		}
		r := st.request(id)
		if err := fn(r); err != nil {
			return nil, err
		}
		out = r
		return json.Marshal(r.stored())
	})
	return out, err
}

// flowPurgeEvery spaces the sweeps of ended requests and codes: each lists them all.
const flowPurgeEvery = time.Minute

// purgeFlow deletes requests and codes that can no longer be used, at most once per
// flowPurgeEvery on this server.
func (s *store) purgeFlow(now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.flow.lastFlowPurge) >= flowPurgeEvery || now.Before(s.flow.lastFlowPurge)
	if due {
		s.flow.lastFlowPurge = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	rec := s.flowRecords()
	var errs []error
	reqs, err := records.ListJSON[storedAuthReq](rec, kindAuthReq)
	errs = append(errs, err)
	for id, r := range reqs {
		if now.Sub(r.Created) > 2*CodeTTL {
			errs = append(errs, rec.DeleteRecord(kindAuthReq, id))
		}
	}
	codes, err := records.ListJSON[storedCode](rec, kindAuthCode)
	errs = append(errs, err)
	for k, c := range codes {
		if now.After(c.Expires) {
			errs = append(errs, rec.DeleteRecord(kindAuthCode, k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.srv.log.Warn("auth: purging ended authorization requests", "err", err)
	}
}

// putAppAccess stores an application's access token.
func (s *store) putAppAccess(id string, a *accessRec) error {
	st := storedAccess{Kind: a.kind, Subject: a.subject, UserID: a.userID, ClientID: a.clientID, Issued: a.issued, Gen: a.gen, Expires: a.expires}
	if a.fam != nil {
		st.Family = a.fam.id
	}
	if err := records.PutJSON(s.flowRecords(), kindAppAccess, id, st); err != nil {
		return fmt.Errorf("auth: store access token: %w", err)
	}
	return nil
}

// appAccess reads an application's access token; ok is false when it is unknown or revoked.
func (s *store) appAccess(id string) (*accessRec, bool, error) {
	var st storedAccess
	err := records.GetJSON(s.flowRecords(), kindAppAccess, id, &st)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("auth: access token: %w", err)
	}
	return &accessRec{fam: &family{id: st.Family, kind: KindUser, userID: st.UserID}, kind: st.Kind, subject: st.Subject,
		userID: st.UserID, clientID: st.ClientID, issued: st.Issued, gen: st.Gen, expires: st.Expires}, true, nil
}

// dropAppAccess deletes the access tokens of an application grant (family), or those expired
// before now when family is "".
func (s *store) dropAppAccess(family string, now time.Time) (int, error) {
	rec := s.flowRecords()
	all, err := records.ListJSON[storedAccess](rec, kindAppAccess)
	if err != nil {
		return 0, fmt.Errorf("auth: list access tokens: %w", err)
	}
	n := 0
	for id, a := range all {
		if (family != "" && a.Family == family) || (family == "" && now.After(a.Expires)) {
			if err := rec.DeleteRecord(kindAppAccess, id); err != nil {
				return n, fmt.Errorf("auth: delete access token: %w", err)
			}
			n++
		}
	}
	return n, nil
}

// accessByID returns a detached copy of access token id's record: from this server's memory,
// then an application's token from the flow's records, then (with a durable store) a token
// another devcloud on the store issued. ok is false for an unknown or revoked token. An
// application's client-credentials token in memory is checked against the store too: another
// devcloud may have revoked it.
func (s *store) accessByID(id string) (*accessRec, bool, error) {
	s.mu.Lock()
	if a, ok := s.access[id]; ok {
		// A station's token or grant may have been revoked through another devcloud.
		gone, err := s.recheckAccessLocked(id, a, s.srv.now())
		if gone || err != nil {
			s.mu.Unlock()
			return nil, false, err
		}
		cp := *a
		if a.fam != nil {
			f := *a.fam
			cp.fam = &f
		}
		s.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		if cp.clientID == "" || s.rec == nil {
			return &cp, true, nil
		}
		_, err = s.rec.GetRecord(kindAccess, id)
		switch {
		case errors.Is(err, records.ErrNotFound):
			s.mu.Lock()
			delete(s.access, id)
			s.mu.Unlock()
			return nil, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("auth: access token: %w", err)
		}
		return &cp, true, nil
	}
	s.mu.Unlock()
	if a, ok, err := s.appAccess(id); ok || err != nil {
		return a, ok, err
	}
	if s.rec == nil {
		return nil, false, nil
	}
	var st storedAccess
	err := records.GetJSON(s.rec, kindAccess, id, &st)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("auth: access token: %w", err)
	}
	a := &accessRec{kind: st.Kind, subject: st.Subject, userID: st.UserID, clientID: st.ClientID, issued: st.Issued, gen: st.Gen, expires: st.Expires}
	if st.Family != "" {
		var f storedFamily
		if err := records.GetJSON(s.rec, kindFamily, st.Family, &f); err != nil {
			return nil, false, fmt.Errorf("auth: access token %q: grant %q: %w", id, st.Family, err)
		}
		a.fam = &family{id: st.Family, seq: f.Seq, kind: f.Kind, stationID: f.StationID, userID: f.UserID, serial: f.Serial, revoked: f.Revoked}
	}
	return a, true, nil
}
