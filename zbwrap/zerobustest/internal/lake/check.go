package lake

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
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

// decode unmarshals one record and checks every value against its Delta
// type: a required field must be present, no unknown fields, and each value
// must fit its column.
func (p *plan) decode(rec []byte) (*dynamicpb.Message, *fieldErr) {
	if len(rec) > MaxRecordSize {
		return nil, &fieldErr{reason: fmt.Sprintf("record is %d bytes, more than the limit of %d", len(rec), MaxRecordSize)}
	}
	m := dynamicpb.NewMessage(p.md)
	opts := proto.UnmarshalOptions{AllowPartial: true, RecursionLimit: 2 * maxTypeDepth}
	if err := opts.Unmarshal(rec, m); err != nil {
		return nil, &fieldErr{reason: "does not decode with the stream's descriptor: " + err.Error()}
	}
	if fe := checkMessage(m, p.fields, ""); fe != nil {
		return nil, fe
	}
	return m, nil
}

func checkMessage(m protoreflect.Message, fields []fplan, prefix string) *fieldErr {
	if u := m.GetUnknown(); len(u) > 0 {
		return unknownField(m.Descriptor(), u, prefix)
	}
	for i := range fields {
		f := &fields[i]
		switch {
		case f.fd.IsList():
			l := m.Get(f.fd).List()
			for j := 0; j < l.Len(); j++ {
				if fe := checkValue(l.Get(j), f.vp.elem); fe != nil {
					return fe
				}
			}
		case f.fd.IsMap():
			var fe *fieldErr
			m.Get(f.fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				if fe = checkValue(k.Value(), f.vp.key); fe == nil {
					fe = checkValue(v, f.vp.elem)
				}
				return fe == nil
			})
			if fe != nil {
				return fe
			}
		case !m.Has(f.fd):
			if !f.nullable {
				return &fieldErr{f.name, "NOT NULL column is missing (required field not set)"}
			}
		default:
			if fe := checkValue(m.Get(f.fd), f.vp); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// unknownField names the first unknown field. A known field number sent with
// the wrong wire type also lands among the unknown fields.
func unknownField(md protoreflect.MessageDescriptor, u protoreflect.RawFields, prefix string) *fieldErr {
	num, typ, n := protowire.ConsumeTag(u)
	if n < 0 {
		return &fieldErr{strings.TrimSuffix(prefix, "."), "malformed unknown field"}
	}
	if fd := md.Fields().ByNumber(num); fd != nil {
		return &fieldErr{prefix + string(fd.Name()), fmt.Sprintf("field %d has wire type %s, which does not match its declared type %s", num, wireTypeName(typ), describeKind(fd))}
	}
	return &fieldErr{strings.TrimSuffix(prefix, "."), fmt.Sprintf("unknown field number %d (wire type %s) is not in the stream's descriptor", num, wireTypeName(typ))}
}

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

func checkValue(v protoreflect.Value, vp *vplan) *fieldErr {
	t := vp.typ
	switch t.Kind {
	case Byte:
		if n := v.Int(); n < -128 || n > 127 {
			return &fieldErr{vp.path, fmt.Sprintf("value %d is out of TINYINT range [-128, 127]", n)}
		}
	case Short:
		if n := v.Int(); n < -32768 || n > 32767 {
			return &fieldErr{vp.path, fmt.Sprintf("value %d is out of SMALLINT range [-32768, 32767]", n)}
		}
	case Date:
		if n := v.Int(); n < minDateDays || n > maxDateDays {
			return &fieldErr{vp.path, fmt.Sprintf("%d days since 1970-01-01 is outside the DATE range 0001-01-01 to 9999-12-31", n)}
		}
	case Timestamp, TimestampNTZ:
		if n := v.Int(); n < minTimeMicros || n > maxTimeMicros {
			return &fieldErr{vp.path, fmt.Sprintf("%d microseconds since the epoch is outside the %s range 0001-01-01 to 9999-12-31", n, t.TypeName())}
		}
	case String:
		if !utf8.ValidString(v.String()) {
			return &fieldErr{vp.path, "STRING value is not valid UTF-8"}
		}
	case Variant:
		if s := v.String(); !json.Valid([]byte(s)) {
			return &fieldErr{vp.path, "VARIANT value is not valid JSON text"}
		}
	case Decimal:
		if _, err := parseDecimal(v.String(), t.Precision, t.Scale); err != nil {
			return &fieldErr{vp.path, err.Error()}
		}
	case Struct:
		return checkMessage(v.Message(), vp.fields, vp.path+".")
	case Array, Map:
		// A wrapped collection (array element or map value).
		return checkMessage(v.Message(), []fplan{{fd: vp.wrap, name: vp.path, vp: vp}}, vp.path+".")
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

// parseDecimal reads decimal text ("-12.340", "5", "1.5e3") as an unscaled
// decimal128 at the given scale. Digits past the scale must be zeros (no
// silent rounding), and the value must fit the precision.
func parseDecimal(s string, prec, scale int) (decimal128.Num, error) {
	bad := func(why string) (decimal128.Num, error) {
		return decimal128.Num{}, fmt.Errorf("%q is not a decimal(%d,%d) value: %s", s, prec, scale, why)
	}
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intDigits := s[intStart:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	if intDigits == "" && frac == "" {
		return bad("no digits")
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if ds == i || i-ds > 4 {
			return bad("bad exponent")
		}
		exp, _ = strconv.Atoi(s[es:i])
	}
	if i != len(s) {
		return bad(fmt.Sprintf("unexpected %q", s[i:]))
	}
	// value = digits * 10^(exp - len(frac)); unscaled = value * 10^scale.
	digits := strings.TrimLeft(intDigits+frac, "0")
	shift := exp - len(frac) + scale
	if shift < 0 {
		drop := -shift
		if drop >= len(digits) {
			if strings.Trim(digits, "0") != "" {
				return bad(fmt.Sprintf("more than %d digits after the decimal point", scale))
			}
			digits = ""
		} else {
			if strings.Trim(digits[len(digits)-drop:], "0") != "" {
				return bad(fmt.Sprintf("more than %d digits after the decimal point", scale))
			}
			digits = digits[:len(digits)-drop]
		}
		shift = 0
	}
	if digits == "" {
		return decimal128.Num{}, nil
	}
	if len(digits)+shift > prec {
		return bad(fmt.Sprintf("more than %d digits before the decimal point", prec-scale))
	}
	var n decimal128.Num
	if len(digits)+shift <= 18 {
		u, _ := strconv.ParseUint(digits, 10, 64)
		n = decimal128.FromU64(u * pow10[shift])
	} else {
		b, _ := new(big.Int).SetString(digits+strings.Repeat("0", shift), 10)
		n = decimal128.FromBigInt(b)
	}
	if neg {
		n = n.Negate()
	}
	return n, nil
}
