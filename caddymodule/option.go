package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// option is one row of an option table.
type option interface {
	optionName() string
	// parse reads the value from the Caddyfile sub-directive the dispenser is on, and checks
	// it. Its errors name the option but carry no position: the caller wraps them.
	parse(d *caddyfile.Dispenser) error
	// validate checks the value as given in JSON.
	validate() error
	// provision resolves runtime placeholders in the value and fills the default.
	provision(repl *caddy.Replacer)
}

// findOption returns the row named name, or nil.
func findOption(options []option, name string) option {
	for _, o := range options {
		if o.optionName() == name {
			return o
		}
	}
	return nil
}

// stringOption is a string-valued option; check nil accepts any value.
type stringOption struct {
	name  string
	value *string
	def   string
	check func(string) error
}

func (o stringOption) optionName() string { return o.name }

func (o stringOption) parse(d *caddyfile.Dispenser) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if err := o.checkValue(v); err != nil {
		return err
	}
	*o.value = v
	return nil
}

func (o stringOption) validate() error { return o.checkValue(*o.value) }

// checkValue checks v unless it is empty (the default) or still holds a runtime placeholder
// ({env.X}, known only at Provision). The error names the option.
func (o stringOption) checkValue(v string) error {
	if v == "" || o.check == nil || isPlaceholder(v) {
		return nil
	}
	if err := o.check(v); err != nil {
		return namedErr(o.name, err)
	}
	return nil
}

// provision resolves the placeholders Caddy knows ({env.X}, {file.path}); unknown ones such as
// Stripe's {CHECKOUT_SESSION_ID} stay.
func (o stringOption) provision(repl *caddy.Replacer) {
	*o.value = repl.ReplaceKnown(*o.value, "")
	if *o.value == "" {
		*o.value = o.def
	}
}

// durationOption is a positive duration. Durations cannot be placeholders: a caddy.Duration
// holds no text.
type durationOption struct {
	name  string
	value *caddy.Duration
	def   time.Duration
}

func (o durationOption) optionName() string { return o.name }

func (o durationOption) parse(d *caddyfile.Dispenser) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s: %q is not a duration (e.g. 30m, 1h, 7d)", o.name, v)
	}
	if err := checkPositiveDuration(o.name, dur); err != nil {
		return err
	}
	*o.value = caddy.Duration(dur)
	return nil
}

func (o durationOption) validate() error {
	if *o.value == 0 {
		return nil
	}
	return checkPositiveDuration(o.name, time.Duration(*o.value))
}

func (o durationOption) provision(*caddy.Replacer) {
	if *o.value == 0 {
		*o.value = caddy.Duration(o.def)
	}
}

// durationsOption takes one or more durations; their rules are the block's (checkStripe).
type durationsOption struct {
	name  string
	value *[]caddy.Duration
}

func (o durationsOption) optionName() string { return o.name }

func (o durationsOption) parse(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return fmt.Errorf("%s needs at least one duration", o.name)
	}
	out := make([]caddy.Duration, 0, len(args))
	for _, a := range args {
		v, err := caddy.ParseDuration(a)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration", o.name, a)
		}
		out = append(out, caddy.Duration(v))
	}
	*o.value = out
	return nil
}

func (o durationsOption) validate() error           { return nil }
func (o durationsOption) provision(*caddy.Replacer) {}

// stringsOption takes one or more words, each checked by check.
type stringsOption struct {
	name  string
	value *[]string
	check func(string) error
}

func (o stringsOption) optionName() string { return o.name }

func (o stringsOption) parse(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return fmt.Errorf("%s needs at least one value", o.name)
	}
	*o.value = args
	return o.validate()
}

func (o stringsOption) validate() error {
	for _, v := range *o.value {
		if err := o.check(v); err != nil {
			return namedErr(o.name, err)
		}
	}
	return nil
}

func (o stringsOption) provision(*caddy.Replacer) {}

// intsOption takes one or more integers, checked together by check; an empty list gets def.
type intsOption struct {
	name  string
	value *[]int
	def   []int
	check func([]int) error
}

func (o intsOption) optionName() string { return o.name }

func (o intsOption) parse(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return fmt.Errorf("%s needs at least one value", o.name)
	}
	out := make([]int, 0, len(args))
	for _, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", o.name, a)
		}
		out = append(out, n)
	}
	*o.value = out
	return o.validate()
}

func (o intsOption) validate() error {
	if len(*o.value) == 0 {
		return nil
	}
	if err := o.check(*o.value); err != nil {
		return namedErr(o.name, err)
	}
	return nil
}

func (o intsOption) provision(*caddy.Replacer) {
	if len(*o.value) == 0 {
		*o.value = append([]int(nil), o.def...)
	}
}

// countOption is a positive integer; zero means the default, which depends on other values.
type countOption struct {
	name  string
	value *int64
}

func (o countOption) optionName() string { return o.name }

func (o countOption) parse(d *caddyfile.Dispenser) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not a positive integer", o.name, v)
	}
	if err := checkCount(o.name, n); err != nil {
		return err
	}
	*o.value = n
	return nil
}

func (o countOption) validate() error {
	if *o.value == 0 {
		return nil
	}
	return checkCount(o.name, *o.value)
}

func (o countOption) provision(*caddy.Replacer) {}

// flagOption is a sub-directive without a value that turns something on.
type flagOption struct {
	name  string
	value *bool
}

func (o flagOption) optionName() string { return o.name }

func (o flagOption) parse(d *caddyfile.Dispenser) error { return parseFlag(d, o.value) }

func (o flagOption) validate() error           { return nil }
func (o flagOption) provision(*caddy.Replacer) {}

// provisionOptions resolves placeholders and fills defaults in every table of the app.
func (a *App) provisionOptions() {
	repl := caddy.NewReplacer()
	tables := [][]option{a.options()}
	if a.Stripe != nil {
		tables = append(tables, a.Stripe.options())
	}
	if a.Webhooks != nil {
		tables = append(tables, a.Webhooks.options())
	}
	for i := range a.Plans {
		tables = append(tables, a.Plans[i].options())
	}
	for _, table := range tables {
		for _, o := range table {
			o.provision(repl)
		}
	}
}
