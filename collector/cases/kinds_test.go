package cases

import (
	"slices"
	"testing"

	"idk/agent/casereport"
)

// The agent may not import the collector, so it keeps its own list of the
// kinds a post may report; this keeps the two in step.
func TestAgentKnowsEveryKind(t *testing.T) {
	var ours []string
	for _, k := range kinds {
		ours = append(ours, string(k))
	}
	if !slices.Equal(ours, casereport.Kinds) {
		t.Fatalf("collector kinds %v, agent's casereport.Kinds %v", ours, casereport.Kinds)
	}
}
