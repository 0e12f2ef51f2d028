package cloudevent

import (
	"encoding/json"
	"fmt"
	"net/url"
)

// Environment variables a Knative SinkBinding injects into the operator's
// Deployment; they set the operator-wide default sink.
const (
	EnvSink        = "K_SINK"
	EnvCEOverrides = "K_CE_OVERRIDES"
)

// Target is where an event goes.
type Target struct {
	// URL is the sink, http or https.
	URL string
	// Token, when set, signs the body (X-Signature, HMAC-SHA256).
	Token []byte
	// Extensions are extension attributes added to every event.
	Extensions map[string]string
}

// ceOverrides is the K_CE_OVERRIDES document (Knative's
// duckv1.CloudEventOverrides).
type ceOverrides struct {
	Extensions map[string]string `json:"extensions"`
}

// DefaultTarget reads the operator-wide default sink from K_SINK and
// K_CE_OVERRIDES through getenv (os.Getenv in main). It returns nil when
// K_SINK is empty. The default sink is unsigned: a token comes only from a
// trigger's Secret.
func DefaultTarget(getenv func(string) string) (*Target, error) {
	sink := getenv(EnvSink)
	if sink == "" {
		return nil, nil
	}
	if err := ValidateURL(sink); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvSink, err)
	}
	t := &Target{URL: sink}
	if raw := getenv(EnvCEOverrides); raw != "" {
		var o ceOverrides
		if err := json.Unmarshal([]byte(raw), &o); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCEOverrides, err)
		}
		for name := range o.Extensions {
			if err := validateExtensionName(name); err != nil {
				return nil, fmt.Errorf("%s: %w", EnvCEOverrides, err)
			}
		}
		t.Extensions = o.Extensions
	}
	return t, nil
}

// ValidateURL checks that a sink URL is absolute http or https, with a
// host.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("URL has no host")
	}
	return nil
}

// validateExtensionName applies CloudEvents 1.0's rule for attribute names
// (lower-case ASCII letters and digits) and keeps the context attributes.
func validateExtensionName(name string) error {
	if name == "" {
		return fmt.Errorf("empty extension name")
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return fmt.Errorf("extension name %q: only lower-case letters and digits are allowed", name)
		}
	}
	if reservedAttributes[name] {
		return fmt.Errorf("extension %q would replace a context attribute", name)
	}
	return nil
}
