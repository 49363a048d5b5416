package clock

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	c := Real()
	if err := Sleep(context.Background(), c, time.Millisecond); err != nil {
		t.Fatalf("sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, c, time.Hour); err != context.Canceled {
		t.Fatalf("sleep on an ended context: %v", err)
	}
	if Or(nil) == nil || Or(c) != c {
		t.Fatal("Or")
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, Real(), time.Millisecond, func() { calls <- struct{}{} })
	}()
	for range 3 {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatal("f was not called")
		}
	}
	cancel()
	// The call in progress, if any, finishes; Every then returns.
	for {
		select {
		case <-calls:
			continue
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Every did not return after ctx ended")
		}
		break
	}
}
