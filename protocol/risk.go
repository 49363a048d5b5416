package protocol

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"idk/protocol/codes"
	"idk/protocol/idkpb"
)

var (
	// KOD_TO_PR: the reference's example has 5 digits and other customs
	// codes have 8; the length is not stated (reference §11 item 7), so
	// both and anything between are taken.
	kodToPrRE = regexp.MustCompile(`^[0-9]{5,8}$`)
	numPrRE   = regexp.MustCompile(`^[0-9]{5}$`)
)

// CheckRiskProfile checks the fields a risk profile gives (an empty one is
// unknown, not wrong) as table 1 of the daily report writes them: KOD_TEH
// and VID_PR are codes of their tables written as the report writes them
// ("01"), KOD_TO_PR 5 to 8 digits, DATE_REG a date DD.MM.YYYY, NUM_PR 5
// digits, DOC_TYPE a code of its table. The agent checks a report with
// it before it queues one, and the collector again, since an agent's
// message is never trusted.
func CheckRiskProfile(p *idkpb.RiskProfile) error {
	var errs []error
	if s := p.GetKodTeh(); s != "" && !codes.KodTeh.ValidText(s) {
		errs = append(errs, fmt.Errorf("KOD_TEH: %q is not one of %s", s, strings.Join(codes.KodTeh.Texts(), ", ")))
	}
	if s := p.GetVidPr(); s != "" && !codes.VidPr.ValidText(s) {
		errs = append(errs, fmt.Errorf("VID_PR: %q is not one of %s", s, strings.Join(codes.VidPr.Texts(), ", ")))
	}
	if s := p.GetKodToPr(); s != "" && !kodToPrRE.MatchString(s) {
		errs = append(errs, fmt.Errorf("KOD_TO_PR: %q: want 5 to 8 digits", s))
	}
	if s := p.GetDateReg(); s != "" {
		if _, err := time.Parse("02.01.2006", s); err != nil {
			errs = append(errs, fmt.Errorf("DATE_REG: %q: want a date DD.MM.YYYY", s))
		}
	}
	if s := p.GetNumPr(); s != "" && !numPrRE.MatchString(s) {
		errs = append(errs, fmt.Errorf("NUM_PR: %q: want 5 digits", s))
	}
	if n := p.GetDocType(); n != 0 && !codes.DocType.Valid(int(n)) {
		errs = append(errs, fmt.Errorf("DOC_TYPE: %d is not one of %s", n, strings.Join(codes.DocType.Texts(), ", ")))
	}
	return errors.Join(errs...)
}
