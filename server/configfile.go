package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// Config is a configuration read as redis-server reads redis.conf and its
// command line (ReadConfig): every directive redis-server 7.0.15 knows,
// checked as it checks them, the later setting of a directive winning.
// Give it to a Server in its Config field. A Config is not changed once
// read, so one may serve several Servers.
type Config struct {
	path   string // the file read, absolute, for CONFIG REWRITE; "" for none
	params []*redisParam
	values []string // parsed, as CONFIG GET shows them
	saved  bool     // a save line was read: the next ones add to it
	// users are the "user" lines' arguments (name, rules...), for the
	// Server to load as Redis loads them once its configuration is read.
	users [][]string
	// usersErr is a user's rule naming a command or category Redis does
	// not have: Redis reports it after the whole configuration is read.
	usersErr error
	// renames are the rename-command lines (from, to), in order;
	// commands is the table they were checked against.
	renames  [][2]string
	commands *commandTable
}

// ConfigError is a line redis-server would refuse to start with. Its
// Error is the report redis-server prints on standard error, byte for
// byte.
type ConfigError struct {
	Line   int    // in the configuration as read: the file, a blank line, then the command line
	Text   string // the line, trimmed
	Reason string // redis-server's words
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("\n*** FATAL CONFIG FILE ERROR (Redis %s) ***\nReading the configuration file, at line %d\n>>> '%s'\n%s\n",
		redisVersion, e.Line, e.Text, e.Reason)
}

// ReadConfig reads the configuration file at path (none if path is
// empty), then the directives of args as redis-server's command line
// gives them ("--port", "7000", "--save", "", ...), as if appended to the
// file. A directive redis-server does not know, a wrong number of
// arguments or a value it refuses stops the read with a *ConfigError;
// an include that cannot be read, with the error redis-server gives.
// "include" reads another file in place, as redis-server does; "user"
// lines are checked as redis-server checks them and give the Server its
// users; "rename-command" renames a command (or, to "", removes it) for
// the Server, as Redis does; "loadmodule" and "sentinel" are refused, as
// this server has no use for them.
func ReadConfig(path string, args []string) (*Config, error) {
	text := ""
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, openError(path, err)
		}
		text = string(b)
	}
	if opts := commandLineConfig(args); opts != "" {
		text += "\n" + opts
	}
	c := &Config{}
	if path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			c.path = abs
		}
	}
	if err := c.load(text, 0); err != nil {
		return nil, err
	}
	if c.usersErr != nil {
		return nil, c.usersErr
	}
	return c, nil
}

// Get returns the value the configuration gave name (a parameter's name
// or its alias), as CONFIG GET would show it, and whether it gave one.
func (c *Config) Get(name string) (string, bool) {
	name = lower(name)
	for i := len(c.params) - 1; i >= 0; i-- {
		if p := c.params[i]; p.name == name || p.alias == name {
			return c.values[i], true
		}
	}
	return "", false
}

// maxIncludeDepth bounds includes that include themselves.
const maxIncludeDepth = 32

func (c *Config) load(text string, depth int) error {
	byName := configByName()
	for i, line := range strings.Split(text, "\n") {
		line = strings.Trim(line, " \t\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		fail := func(reason string) error { return &ConfigError{Line: i + 1, Text: line, Reason: reason} }
		args, ok := resp.SplitArgs(line)
		if !ok {
			return fail("Unbalanced quotes in configuration line")
		}
		if len(args) == 0 {
			continue
		}
		name := lower(args[0])
		if name == "include" && len(args) == 2 {
			if depth >= maxIncludeDepth {
				return fail("too many nested includes")
			}
			b, err := os.ReadFile(args[1])
			if err != nil {
				return openError(args[1], err)
			}
			if err := c.load(string(b), depth+1); err != nil {
				return err
			}
			continue
		}
		if name == "user" && len(args) >= 2 {
			if reason := c.addUser(args); reason != "" {
				return fail(reason)
			}
			continue
		}
		if name == "rename-command" && len(args) == 3 {
			if c.commands == nil {
				c.commands = newCommandTable()
			}
			if reason := c.commands.rename(args[1], args[2]); reason != "" {
				return fail(reason)
			}
			c.renames = append(c.renames, [2]string{args[1], args[2]})
			continue
		}
		p := byName[name]
		switch {
		case p == nil && (name == "loadmodule" || name == "sentinel"):
			return fail("'" + name + "' is not supported by this server")
		case p == nil:
			return fail("Bad directive or wrong number of arguments")
		case len(args) != 2 && !p.multiArg:
			return fail("wrong number of arguments")
		}
		v, err := parseParam(p, strings.Join(args[1:], " "))
		if err != "" {
			return fail(string(err))
		}
		if p.name == "save" { // the first save line replaces the default, later ones add to it
			if prev, _ := c.Get("save"); c.saved && prev != "" && v != "" {
				v = prev + " " + v
			}
			c.saved = true
		}
		c.params = append(c.params, p)
		c.values = append(c.values, v)
	}
	return nil
}

// addUser checks a "user" line as Redis's ACLAppendUserForLoading and
// keeps it, or returns Redis's reason to refuse it. As Redis, the reason
// names the line's argument at the index of the bad rule among the rules.
func (c *Config) addUser(args []string) string {
	name := args[1]
	for _, u := range c.users {
		if u[0] == name {
			return fmt.Sprintf("Error in user declaration '%s': %s", args[1], errRuleDuplicateUser)
		}
	}
	rules, bad, ok := mergeSelectorArgs(args[2:])
	if !ok {
		return fmt.Sprintf("Error in user declaration '%s': %s", args[bad], errRuleUnknownCommand)
	}
	a := newACLState("", false)
	u := a.newUser(name)
	for j, rule := range rules {
		err := a.setUser(u, rule)
		if err == errRuleUnknownCommand {
			if c.usersErr == nil {
				c.usersErr = fmt.Errorf("%w: Error loading ACL rule '%s' for the user named '%s': %s", ErrBadUsers, rule, name, err)
			}
		} else if err != nil {
			return fmt.Sprintf("Error in user declaration '%s': %s", args[j], err)
		}
	}
	c.users = append(c.users, append([]string{name}, rules...))
	return ""
}

// openError is redis-server's report of a configuration file it cannot
// open, with the C library's words for why.
func openError(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	why := err.Error()
	if why != "" {
		why = strings.ToUpper(why[:1]) + why[1:]
	}
	return fmt.Errorf("Fatal error, can't open config file '%s': %s", path, why)
}

// configByName maps every parameter's name and alias to it.
func configByName() map[string]*redisParam {
	m := make(map[string]*redisParam, len(redisParams))
	for i := range redisParams {
		m[redisParams[i].name] = &redisParams[i]
	}
	return m
}

// commandLineConfig turns redis-server's command line options into
// configuration lines as it does: "--name" begins a line, each argument
// after it is appended quoted, and a "--save" followed by another option
// saves nothing.
func commandLineConfig(args []string) string {
	var b strings.Builder
	for j, a := range args {
		if strings.HasPrefix(a, "--") {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(a[2:])
			b.WriteByte(' ')
			if lower(a) == "--save" && (j == len(args)-1 || strings.HasPrefix(args[j+1], "--")) {
				b.WriteString(`""`)
			}
			continue
		}
		b.WriteString(catRepr(a))
		b.WriteByte(' ')
	}
	return b.String()
}

// catRepr quotes s as Redis's sdscatrepr does.
func catRepr(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
