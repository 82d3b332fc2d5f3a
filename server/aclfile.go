package server

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Where users come from: the Server's Users field and a configuration's
// "user" lines, or an ACL file (not both, as in Redis), then ACL SETUSER,
// ACL LOAD and ACL SAVE.

// ErrBadUsers is wrapped by the errors of users that cannot be loaded:
// a rule Redis refuses, a user given twice, an ACL file with a bad line.
var ErrBadUsers = errors.New("server: invalid ACL users")

// loadUsers creates the users of "user" lines (name, rules...) as Redis's
// ACLLoadConfiguredUsers: "default" is reset first; a rule refused stops
// the load with Redis's log line.
func (a *aclState) loadUsers(lines [][]string) error {
	seen := map[string]bool{}
	for _, line := range lines {
		name := line[0]
		if hasSpaces(name) {
			return fmt.Errorf("%w: Spaces not allowed in ACL usernames", ErrBadUsers)
		}
		if seen[name] {
			return fmt.Errorf("%w: user %s: %s", ErrBadUsers, name, errRuleDuplicateUser)
		}
		seen[name] = true
		rules, bad, ok := mergeSelectorArgs(line[1:])
		if !ok {
			return fmt.Errorf("%w: user %s: Unmatched parenthesis in acl selector starting at '%s'", ErrBadUsers, name, line[1+bad])
		}
		u := a.users[name]
		if u == nil {
			u = a.newUser(name)
			a.users[name] = u
		} else {
			_ = a.setUser(u, "reset")
		}
		for _, rule := range rules {
			if err := a.setUser(u, rule); err != nil {
				return fmt.Errorf("%w: Error loading ACL rule '%s' for the user named '%s': %s", ErrBadUsers, rule, name, err)
			}
		}
	}
	return nil
}

// buildACL makes the users the Server starts with: the default user with
// requirepass as its password, then the Users field's and the
// configuration's users, or the ACL file's.
func (s *Server) buildACL(lim *limits) (*aclState, error) {
	a := newACLState(lim.password, s.configValue("acl-pubsub-default") == "allchannels")
	var lines [][]string
	for i, u := range s.Users {
		f := strings.Fields(u)
		if len(f) == 0 {
			return nil, fmt.Errorf("%w: user %d is empty", ErrBadUsers, i+1)
		}
		lines = append(lines, f)
	}
	if s.Config != nil {
		lines = append(lines, s.Config.users...)
	}
	file := s.aclFile()
	if file != "" && len(lines) > 0 {
		return nil, fmt.Errorf("%w: Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.", ErrBadUsers)
	}
	if err := a.loadUsers(lines); err != nil {
		return nil, err
	}
	if file != "" {
		users, err := a.readFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: Aborting Redis startup because of ACL errors: %v", ErrBadUsers, err)
		}
		a.replaceUsers(users)
	}
	return a, nil
}

// aclFile is the ACL file in force: the configuration's aclfile, else
// the ACLFile field.
func (s *Server) aclFile() string {
	if s.Config != nil {
		if f, ok := s.Config.Get("aclfile"); ok && f != "" {
			return f
		}
	}
	return s.ACLFile
}

// readFile reads an ACL file as Redis's ACLLoadFromFile: each line
// "user <name> <rules...>", split at single spaces; blank lines are
// skipped, anything else (comments included) is an error. Every error is
// collected, Redis's way, and none of the users is kept if there is one.
func (a *aclState) readFile(path string) (map[string]*aclUser, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("Error loading ACLs, opening file '%s': %s", path, cError(err))
	}
	users := map[string]*aclUser{}
	var errs strings.Builder
	for i, line := range strings.Split(string(b), "\n") {
		num := i + 1
		line = strings.Trim(line, " \t\r\n")
		if line == "" {
			continue
		}
		argv := strings.Split(line, " ")
		if argv[0] != "user" || len(argv) < 2 {
			fmt.Fprintf(&errs, "%s:%d should start with user keyword followed by the username. ", path, num)
			continue
		}
		name := argv[1]
		if hasSpaces(name) {
			fmt.Fprintf(&errs, "'%s:%d: username '%s' contains invalid characters. ", path, num, name)
			continue
		}
		if users[name] != nil {
			fmt.Fprintf(&errs, "WARNING: Duplicate user '%s' found on line %d. ", name, num)
			continue
		}
		u := a.newUser(name)
		users[name] = u
		rules, _, ok := mergeSelectorArgs(argv[2:])
		if !ok { // Redis 7.0.15 crashes here; this server reports it
			fmt.Fprintf(&errs, "%s:%d: Unmatched parenthesis in selector definition.", path, num)
			continue
		}
		reported := false
		for _, rule := range rules {
			rule = strings.Trim(rule, "\t\r\n")
			// Every unknown command is reported, as it says nothing
			// secret; of the other errors only the first of the line, as
			// it may explain the ones after it.
			switch err := a.setUser(u, rule); {
			case err == errRuleUnknownCommand:
				fmt.Fprintf(&errs, "%s:%d: Error in applying operation '%s': %s. ", path, num, rule, err)
			case err != nil && !reported:
				fmt.Fprintf(&errs, "%s:%d: %s. ", path, num, err)
				reported = true
			}
		}
	}
	if errs.Len() > 0 {
		errs.WriteString("WARNING: ACL errors detected, no change to the previously active ACL rules was performed")
		return nil, errors.New(errs.String())
	}
	return users, nil
}

// cError is an error as the C library's strerror words it: capitalized.
func cError(err error) string {
	why := err.Error()
	if why != "" {
		why = strings.ToUpper(why[:1]) + why[1:]
	}
	return why
}

// replaceUsers makes users the users in force, as a successful ACL LOAD:
// the default user keeps its identity and takes the file's rules (or all
// permissions without password, if the file has none for it).
func (a *aclState) replaceUsers(users map[string]*aclUser) {
	if d := users["default"]; d != nil {
		a.def.copyFrom(d)
	} else {
		a.def.copyFrom(a.newDefaultUser())
	}
	users["default"] = a.def
	a.users = users
}

// save writes every user as ACL LIST shows them to path, through a
// temporary file renamed over it, as Redis's ACLSaveToFile.
func (a *aclState) save(path string) error {
	var b strings.Builder
	for _, u := range a.sortedUsers() {
		b.WriteString("user " + u.name + " " + u.describe() + "\n")
	}
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
