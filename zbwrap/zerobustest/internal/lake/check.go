package lake

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"google.golang.org/protobuf/encoding/protowire"
)

// MaxRecordSize is the largest record the lake accepts (the wire limits a
// request to 10 MiB; this bound only keeps a frame's size sane).
const MaxRecordSize = 64 << 20

// Delta's DATE and TIMESTAMP ranges: 0001-01-01 to 9999-12-31.
const (
	minDateDays   = -719162
	maxDateDays   = 2932896
	minTimeMicros = -62135596800000000
	maxTimeMicros = 253402300799999999
)

// fieldErr is a bad value at a column path.
type fieldErr struct{ column, reason string }

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType, protowire.EndGroupType:
		return "group"
	}
	return strconv.Itoa(int(t))
}

// checkScalar checks one scalar value against its Delta type: raw holds the
// wire bits of a number, b the bytes of a string.
func checkScalar(v *wval, raw uint64, b []byte) *fieldErr {
	switch v.kind {
	case Byte:
		if n := intValue(v.enc, raw); n < -128 || n > 127 {
			return &fieldErr{v.path, fmt.Sprintf("value %d is out of TINYINT range [-128, 127]", n)}
		}
	case Short:
		if n := intValue(v.enc, raw); n < -32768 || n > 32767 {
			return &fieldErr{v.path, fmt.Sprintf("value %d is out of SMALLINT range [-32768, 32767]", n)}
		}
	case Date:
		if n := intValue(v.enc, raw); n < minDateDays || n > maxDateDays {
			return &fieldErr{v.path, fmt.Sprintf("%d days since 1970-01-01 is outside the DATE range 0001-01-01 to 9999-12-31", n)}
		}
	case Timestamp, TimestampNTZ:
		if n := intValue(v.enc, raw); n < minTimeMicros || n > maxTimeMicros {
			return &fieldErr{v.path, fmt.Sprintf("%d microseconds since the epoch is outside the %s range 0001-01-01 to 9999-12-31", n, v.typ.TypeName())}
		}
	case String:
		if !utf8.Valid(b) {
			return &fieldErr{v.path, "STRING value is not valid UTF-8"}
		}
	case Variant:
		if !json.Valid(b) {
			return &fieldErr{v.path, "VARIANT value is not valid JSON text"}
		}
	case Decimal:
		if _, err := parseDecimal(b, v.prec, v.scale); err != nil {
			return &fieldErr{v.path, err.Error()}
		}
	}
	return nil
}

// pow10 holds 10^0 .. 10^18.
var pow10 = func() (p [19]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseDecimal reads decimal text ("-12.340", "5", "1.5e3") as an unscaled
// decimal128 at the given scale. Digits past the scale must be zeros (no
// silent rounding), and the value must fit the precision. It allocates only
// to report an error.
func parseDecimal[S ~string | ~[]byte](s S, prec, scale int) (decimal128.Num, error) {
	bad := func(why string) (decimal128.Num, error) {
		return decimal128.Num{}, fmt.Errorf("%q is not a decimal(%d,%d) value: %s", string(s), prec, scale, why)
	}
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	nInt := i - intStart
	fracStart, nFrac := i, 0
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		nFrac = i - fracStart
	}
	if nInt == 0 && nFrac == 0 {
		return bad("no digits")
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		ds := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if ds == i || i-ds > 4 {
			return bad("bad exponent")
		}
		for k := ds; k < i; k++ {
			exp = exp*10 + int(s[k]-'0')
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return bad(fmt.Sprintf("unexpected %q", string(s[i:])))
	}
	// The digits are the integer digits then the fraction digits:
	// value = digits * 10^(exp - nFrac); unscaled = value * 10^scale.
	all := nInt + nFrac
	digit := func(k int) byte {
		if k < nInt {
			return s[intStart+k]
		}
		return s[fracStart+k-nInt]
	}
	lead := 0
	for lead < all && digit(lead) == '0' {
		lead++
	}
	nd := all - lead // significant digits; the first is not a zero
	shift := exp - nFrac + scale
	if shift < 0 {
		drop := -shift
		if drop >= nd {
			if nd > 0 {
				return bad(fmt.Sprintf("more than %d digits after the decimal point", scale))
			}
		} else {
			for k := all - drop; k < all; k++ {
				if digit(k) != '0' {
					return bad(fmt.Sprintf("more than %d digits after the decimal point", scale))
				}
			}
		}
		nd = max(nd-drop, 0)
		shift = 0
	}
	if nd == 0 {
		return decimal128.Num{}, nil
	}
	if nd+shift > prec {
		return bad(fmt.Sprintf("more than %d digits before the decimal point", prec-scale))
	}
	var n decimal128.Num
	if nd+shift <= 18 {
		var u uint64
		for k := lead; k < lead+nd; k++ {
			u = u*10 + uint64(digit(k)-'0')
		}
		n = decimal128.FromU64(u * pow10[shift])
	} else {
		for k := lead; k < lead+nd; {
			c := min(18, lead+nd-k)
			var u uint64
			for j := k; j < k+c; j++ {
				u = u*10 + uint64(digit(j)-'0')
			}
			n = n.Mul(decimal128.GetScaleMultiplier(c)).Add(decimal128.FromU64(u))
			k += c
		}
		n = n.Mul(decimal128.GetScaleMultiplier(shift))
	}
	if neg {
		n = n.Negate()
	}
	return n, nil
}
