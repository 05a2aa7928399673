package tyntec

import (
	"encoding/json"
	"testing"
	"time"
)

// A v1 event's time: created in milliseconds or seconds, else
// timestampCreated, else unknown — never 1970.
func TestV1EventCreatedAt(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := time.Date(2026, 12, 4, 11, 59, 20, 123e6, time.UTC)
	tests := []struct {
		name string
		e    V1Event
		want time.Time // zero: not known
	}{
		{"milliseconds", V1Event{Created: at.UnixMilli()}, at},
		{"seconds", V1Event{Created: at.Unix()}, at.Truncate(time.Second)},
		{"milliseconds before text", V1Event{Created: at.UnixMilli(), TimestampCreated: "2020-01-01T00:00:00Z"}, at},
		{"no created: the text", V1Event{TimestampCreated: "2026-12-04T11:59:20.123Z"}, at},
		{"no created: the text in another spelling", V1Event{TimestampCreated: "2026-12-04 12:59:20.123+0100"}, at},
		{"neither", V1Event{}, time.Time{}},
		{"a created that is no time, no text", V1Event{Created: 42}, time.Time{}},
		{"a day ahead of the reader", V1Event{Created: now.Add(25 * time.Hour).UnixMilli()}, time.Time{}},
		{"unreadable text", V1Event{TimestampCreated: "yesterday"}, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := tt.e.CreatedAt(now)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) || (ok && got.Location() != time.UTC) {
			t.Errorf("%s: CreatedAt(%+v) = %v, %v; want %v", tt.name, tt.e, got, ok, tt.want)
		}
	}
}

// A v4 OTP whose times come zone-less or unreadable is still read: its
// status matters more than a time, which is read as a webhook's is.
func TestOTPTimes(t *testing.T) {
	body := `{"otpId":"0b2c4da0-3857-4d00-95c8-cf56ee6f41ea","otpStatus":"VERIFIED","attemptCount":1,` +
		`"otpCreated":"2026-12-04T18:46:20","otpExpire":"soon"}`
	var o OTP
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if o.OTPStatus != "VERIFIED" || o.AttemptCount != 1 || o.OTPID != "0b2c4da0-3857-4d00-95c8-cf56ee6f41ea" ||
		!o.OTPCreated.Equal(time.Date(2026, 12, 4, 18, 46, 20, 0, time.UTC)) || !o.OTPExpire.IsZero() {
		t.Errorf("Unmarshal = %+v; want the status, the creation as UTC, the expiry unknown", o)
	}
	if err := json.Unmarshal([]byte(`{"otpId":1}`), &o); err == nil {
		t.Errorf("Unmarshal of a numeric otpId: no error")
	}
}
