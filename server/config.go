package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadConfig is wrapped by the errors of the config parsers.
var ErrBadConfig = errors.New("server: invalid configuration value")

// ParseOutputLimit parses one class's limit as Redis's
// client-output-buffer-limit writes it: "<hard> <soft> <soft seconds>",
// sizes in bytes or with Redis's units (1k = 1000, 1kb = 1024; m, mb, g,
// gb likewise), 0 for no limit: "32mb 8mb 60".
func ParseOutputLimit(s string) (OutputLimit, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return OutputLimit{}, fmt.Errorf("%w: output limit %q: want <hard> <soft> <soft seconds>", ErrBadConfig, s)
	}
	hard, err := ParseMemory(f[0])
	if err != nil {
		return OutputLimit{}, err
	}
	soft, err := ParseMemory(f[1])
	if err != nil {
		return OutputLimit{}, err
	}
	secs, err := strconv.ParseInt(f[2], 10, 32)
	if err != nil || secs < 0 {
		return OutputLimit{}, fmt.Errorf("%w: output limit %q: soft seconds %q", ErrBadConfig, s, f[2])
	}
	return OutputLimit{Hard: hard, Soft: soft, SoftPeriod: time.Duration(secs) * time.Second}, nil
}

// ParseMemory parses a size as Redis's memtoll does: a non-negative
// integer with an optional unit, b, k, kb, m, mb, g or gb, in any case.
func ParseMemory(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{
		{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
		{"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1},
	}
	num, mul := strings.ToLower(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mul = strings.TrimSuffix(num, u.suffix), u.mul
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<63-1)/mul {
		return 0, fmt.Errorf("%w: size %q", ErrBadConfig, s)
	}
	return v * mul, nil
}

// ParseTimeout parses Redis's timeout, plain seconds ("300"), or a Go
// duration ("5m").
func ParseTimeout(s string) (time.Duration, error) {
	if secs, err := strconv.ParseInt(s, 10, 32); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: timeout %q: want seconds or a duration", ErrBadConfig, s)
	}
	return d, nil
}
