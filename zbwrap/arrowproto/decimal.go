package arrowproto

import "math/bits"

// maxDecimalScale bounds the scale of decimal columns (Arrow's decimal256
// allows up to 76), which bounds the length of their text.
const maxDecimalScale = 76

// decimalText appends the exact decimal text of decimal element j of c, as
// Arrow prints it: "-12.340" for unscaled -12340 at scale 3, "0.05" for 5 at
// scale 2, "1200" for 12 at scale -2. It does not allocate when dst has room
// (160 bytes always suffice).
func decimalText(dst []byte, c *col, j int) []byte {
	k := c.off + j
	var w [4]uint64 // magnitude, little-endian words
	neg := false
	switch c.kind {
	case kDecimal32:
		v := int64(int32(le32(c.raw, k)))
		neg = v < 0
		w[0] = uint64(v)
		if neg {
			w[0] = uint64(-v)
		}
	case kDecimal64:
		v := int64(le64(c.raw, k))
		neg = v < 0
		w[0] = uint64(v)
		if neg {
			w[0] = -w[0]
		}
	case kDecimal128:
		w[0], w[1] = le64(c.raw, 2*k), le64(c.raw, 2*k+1)
		neg = int64(w[1]) < 0
		if neg {
			negate(w[:2])
		}
	default: // kDecimal256
		for i := range w {
			w[i] = le64(c.raw, 4*k+i)
		}
		neg = int64(w[3]) < 0
		if neg {
			negate(w[:])
		}
	}

	// Digits, most significant first, in 19-digit chunks from the bottom.
	var buf [80]byte
	i := len(buf)
	for {
		var r uint64
		for x := 3; x >= 0; x-- {
			w[x], r = bits.Div64(r, w[x], 1e19)
		}
		more := w != [4]uint64{}
		for d := 0; d < 19 && (more || r != 0 || d == 0); d++ {
			i--
			buf[i] = byte('0' + r%10)
			r /= 10
		}
		if !more {
			break
		}
	}
	digits := buf[i:]

	if neg {
		dst = append(dst, '-')
	}
	scale := int(c.scale)
	switch {
	case scale <= 0:
		dst = append(dst, digits...)
		if len(digits) > 1 || digits[0] != '0' {
			for ; scale < 0; scale++ {
				dst = append(dst, '0')
			}
		}
	case len(digits) <= scale:
		dst = append(dst, '0', '.')
		for z := len(digits); z < scale; z++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		at := len(digits) - scale
		dst = append(dst, digits[:at]...)
		dst = append(dst, '.')
		dst = append(dst, digits[at:]...)
	}
	return dst
}

// negate replaces the two's complement number w (little-endian words) by -w.
func negate(w []uint64) {
	carry := uint64(1)
	for i := range w {
		w[i], carry = bits.Add64(^w[i], 0, carry)
	}
}
