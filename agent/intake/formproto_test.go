package intake

import (
	"testing"

	"idk/agent/layout"
)

// FormProto carries «Вид ТС» as Form.vid_ts; 0 stays 0 (not filled).
func TestFormProtoVidTS(t *testing.T) {
	for _, vid := range []int{0, 1, 6} {
		if got := FormProto(&layout.Form{NumSnim: "1", VidTS: vid}).GetVidTs(); got != uint32(vid) {
			t.Errorf("VidTS %d: vid_ts = %d", vid, got)
		}
	}
}
