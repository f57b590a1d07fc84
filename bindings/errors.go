package bindings

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// ErrorPrefix starts the message of every error the facade returns; a JSON
// object (errorInfo) follows it.
const ErrorPrefix = "zerobus-error:"

// Error kinds beyond zbwrap's (zbwrap.Kind.String with "_" for spaces).
const (
	kindInternal     = "internal"     // a bug: a recovered panic, an unknown error
	kindConversion   = "conversion"   // bad input: released stream, corrupted IPC, schema
	kindTransmission = "transmission" // closed wrapper, unknown operation, timeout
	kindConfig       = "configuration"
)

// errorInfo is the JSON form of an error, read by pyzerobus.errors.
type errorInfo struct {
	Kind        string      `json:"kind"`
	Message     string      `json:"message"`
	Op          string      `json:"op,omitempty"`
	Setting     string      `json:"setting,omitempty"`
	Retryable   bool        `json:"retryable"`
	GRPCCode    string      `json:"grpc_code,omitempty"`
	GRPCMessage string      `json:"grpc_message,omitempty"`
	Problems    []problem   `json:"problems,omitempty"`
	Result      *resultJSON `json:"result,omitempty"`
}

// problem is one invalid setting.
type problem struct {
	Setting string `json:"setting"`
	Message string `json:"message"`
}

// facadeError is an error already in its final form.
type facadeError struct{ info errorInfo }

func (e *facadeError) Error() string {
	b, err := json.Marshal(e.info)
	if err != nil { // cannot happen: errorInfo has only plain fields
		return ErrorPrefix + `{"kind":"internal","message":"unencodable error"}`
	}
	return ErrorPrefix + string(b)
}

// newError is an error of the facade itself.
func newError(kind, op, format string, args ...any) error {
	return &facadeError{errorInfo{Kind: kind, Op: op, Message: fmt.Sprintf(format, args...)}}
}

// kindName is the JSON name of a zbwrap kind.
func kindName(k zbwrap.Kind) string {
	return strings.ReplaceAll(k.String(), " ", "_")
}

// leaves returns the *zbwrap.Error values of a (possibly joined) error.
func leaves(err error) []*zbwrap.Error {
	var out []*zbwrap.Error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ze *zbwrap.Error
		if errors.As(err, &ze) {
			out = append(out, ze)
		}
	}
	walk(err)
	return out
}

// describe fills the fields of info that come from one *zbwrap.Error.
func describe(info *errorInfo, e *zbwrap.Error) {
	info.Kind = kindName(e.Kind)
	info.Op = e.Op
	info.Setting = e.Setting
	info.Retryable = e.Retryable()
	if st := e.GRPCStatus(); st != nil {
		info.GRPCCode = st.Code().String()
		info.GRPCMessage = st.Message()
	}
}

// wrapError converts any error to the facade's form (nil stays nil).
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	var fe *facadeError
	if errors.As(err, &fe) {
		return fe
	}
	info := errorInfo{Kind: kindInternal, Message: err.Error()}
	ls := leaves(err)
	if len(ls) > 0 {
		describe(&info, ls[0])
		for _, l := range ls {
			if l.Setting != "" {
				info.Problems = append(info.Problems, problem{Setting: l.Setting, Message: l.Msg})
			}
		}
	}
	return &facadeError{info}
}

// recoverError turns a panic of the calling function into an error in
// *err. Use as: defer recoverError(&err).
func recoverError(err *error) {
	if r := recover(); r != nil {
		*err = panicError(r)
	}
}

func panicError(r any) error {
	return newError(kindInternal, "panic", "unexpected failure in the engine: %v\n%s", r, debug.Stack())
}
