// Command configgen asks a redis-server what each of its configuration
// parameters is: its value on a server started with no configuration file,
// whether CONFIG SET may change it, and what CONFIG SET accepts (a yes/no,
// one of a list, an integer or a size within bounds, anything), by
// setting values and reading the errors; and whether a configuration file
// may give it more than one argument (a line "name a b" refused for its
// number of arguments or not). It writes the table the server's CONFIG
// and its configuration files answer from:
//
//	go run ./server/internal/configgen -o server/config_params.go
//
// It starts a redis-server of its own on a free loopback port and stops it
// at the end; run it against the Redis the server matches (7.0.15).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"go/format"
	"log"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

func main() {
	out := flag.String("o", "config_params.go", "file to write")
	flag.Parse()
	port, err := freePort()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "configgen")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	c, err := dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Fatal(err)
	}
	version := c.do("INFO", "server").Str
	version = regexp.MustCompile(`redis_version:(\S+)`).FindStringSubmatch(version)[1]

	all := c.do("CONFIG", "GET", "*")
	var params []param
	for i := 0; i+1 < len(all.Elems); i += 2 {
		params = append(params, param{name: all.Elems[i].Str, value: all.Elems[i+1].Str})
	}
	// What this run chose, not Redis's default: the server fills these in.
	runtime := map[string]bool{"port": true, "bind": true, "dir": true}
	slices.SortFunc(params, func(a, b param) int { return strings.Compare(a.name, b.name) })
	for i := range params {
		probe(c, &params[i])
	}
	for i := range params {
		findAlias(c, params, &params[i])
	}
	for i := range params {
		params[i].multiArg = takesArgs(dir, params[i].name)
	}
	rewrites := rewriteProbe(dir, params)
	for i := range params {
		params[i].rewrite = rewrites[params[i].name]
		params[i].rewriteAlways = rewrites[params[i].name+"/always"] != ""
		if runtime[params[i].name] {
			params[i].value = ""
		}
	}
	src := render(version, params)
	formatted, err := format.Source(src)
	if err != nil {
		os.WriteFile(*out, src, 0o644)
		log.Fatalf("formatting: %v", err)
	}
	if err := os.WriteFile(*out, formatted, 0o644); err != nil {
		log.Fatal(err)
	}
}

type param struct {
	name, value string
	kind        string // "immutable", "protected", "bool", "enum", "int", "memory", "string", "special"
	enum        []string
	min, max    string // bounds of an int or a memory value, as Redis writes them
	alias       string // another name of the same parameter
	multiArg    bool   // a configuration file may give it several arguments
	rewrite     string // how CONFIG REWRITE writes it: "plain", "quoted", "memory", "nullable", "special", "alias"
	// rewriteAlways: CONFIG REWRITE writes it even at its default value.
	rewriteAlways bool
}

// takesArgs reports whether redis-server reads a configuration file line
// giving name two or three arguments as more than a wrong number of
// arguments (oom-score-adj-values takes three, and only three).
func takesArgs(dir, name string) bool {
	for _, args := range []string{"a b", "a b c"} {
		file := dir + "/probe.conf"
		line := name + " " + args
		if err := os.WriteFile(file, []byte(line+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
		// port 0 and a wrong value of a later directive: a file that
		// passes stops the start all the same, and nothing listens
		// meanwhile.
		out, _ := exec.Command("redis-server", file, "--port", "0", "--maxclients", "none").CombinedOutput()
		_, reason, _ := strings.Cut(string(out), "'"+line+"'\n")
		reason, _, _ = strings.Cut(reason, "\n")
		if reason != "wrong number of arguments" && reason != "Bad directive or wrong number of arguments" {
			return true
		}
	}
	return false
}

// findAlias sets p.alias to the parameter that changes with p, if any.
func findAlias(c *conn, params []param, p *param) {
	var other string
	switch p.kind {
	case "string":
		other = "configgen-probe"
	case "bool":
		other = map[string]string{"yes": "no", "no": "yes"}[p.value]
	case "enum":
		for _, e := range p.enum {
			if e != p.value {
				other = e
				break
			}
		}
	case "int", "memory":
		v, err := strconv.ParseInt(p.value, 10, 64)
		if err != nil {
			return
		}
		if p.max == "" || strconv.FormatInt(v, 10) != p.max {
			other = strconv.FormatInt(v+1, 10)
		} else {
			other = strconv.FormatInt(v-1, 10)
		}
	}
	if other == "" || p.name == "port" || p.name == "bind" {
		return
	}
	if r := c.do("CONFIG", "SET", p.name, other); r.Type == '-' {
		return
	}
	all := c.do("CONFIG", "GET", "*")
	c.do("CONFIG", "SET", p.name, p.value)
	for i := 0; i+1 < len(all.Elems); i += 2 {
		name := all.Elems[i].Str
		if name == p.name {
			continue
		}
		for _, q := range params {
			if q.name == name && q.value != all.Elems[i+1].Str {
				p.alias = name
			}
		}
	}
}

var (
	reEnum   = regexp.MustCompile(`argument\(s\) must be one of the following: (.*)$`)
	reBounds = regexp.MustCompile(`argument must be between (-?\d+) and (-?\d+) inclusive$`)
)

// probe classifies p by what CONFIG SET says of values that reveal it,
// putting the value back after each.
func probe(c *conn, p *param) {
	restore := func() {
		if r := c.do("CONFIG", "SET", p.name, p.value); r.Type == '-' {
			log.Printf("%s: cannot restore %q: %s", p.name, p.value, r.Str)
		}
	}
	errText := func(r resp.Value) string {
		if r.Type != '-' {
			return ""
		}
		_, msg, _ := strings.Cut(r.Str, ") - ")
		return msg
	}
	r := c.do("CONFIG", "SET", p.name, p.value)
	switch {
	case strings.HasSuffix(r.Str, "can't set immutable config"):
		p.kind = "immutable"
		return
	case strings.HasSuffix(r.Str, "can't set protected config"):
		p.kind = "protected"
		return
	}
	msg := errText(c.do("CONFIG", "SET", p.name, "configgen-probe"))
	restore()
	switch {
	case msg == "":
		p.kind = "string"
	case strings.HasSuffix(msg, "argument must be 'yes' or 'no'"):
		p.kind = "bool"
	case reEnum.MatchString(msg):
		p.kind = "enum"
		p.enum = strings.Split(reEnum.FindStringSubmatch(msg)[1], ", ")
	case strings.HasSuffix(msg, "argument couldn't be parsed into an integer"):
		p.kind = "int"
		p.min, p.max = bounds(c, p, "-9223372036854775808", "9223372036854775807")
	case strings.HasSuffix(msg, "argument must be a memory value"):
		p.kind = "memory"
		p.min, p.max = bounds(c, p, "0", "9223372036854775807", "18446744073709551615")
	default:
		p.kind = "special"
	}
}

// bounds returns the bounds Redis names when a value past them is set.
func bounds(c *conn, p *param, values ...string) (string, string) {
	for _, v := range values {
		r := c.do("CONFIG", "SET", p.name, v)
		if r.Type != '-' {
			c.do("CONFIG", "SET", p.name, p.value)
			continue
		}
		if m := reBounds.FindStringSubmatch(r.Str); m != nil {
			return m[1], m[2]
		}
	}
	return "", ""
}

func render(version string, params []param) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by go run ./server/internal/configgen against redis-server %s; DO NOT EDIT.\n\n", version)
	b.WriteString("package server\n\n")
	fmt.Fprintf(&b, "// redisParams are redis-server %s's configuration parameters, each with\n", version)
	b.WriteString("// its value on a server started without a configuration file and what\n// CONFIG SET accepts for it.\n")
	b.WriteString("var redisParams = []redisParam{\n")
	for _, p := range params {
		fmt.Fprintf(&b, "\t{name: %q, value: %q, kind: param%s", p.name, p.value, strings.ToUpper(p.kind[:1])+p.kind[1:])
		if len(p.enum) > 0 {
			fmt.Fprintf(&b, ", enum: %#v", p.enum)
		}
		if p.min != "" {
			fmt.Fprintf(&b, ", min: %s, max: %s", p.min, p.max)
		}
		if p.alias != "" {
			fmt.Fprintf(&b, ", alias: %q", p.alias)
		}
		if p.multiArg {
			b.WriteString(", multiArg: true")
		}
		if p.rewrite != "" {
			fmt.Fprintf(&b, ", rewrite: rewrite%s", strings.ToUpper(p.rewrite[:1])+p.rewrite[1:])
		}
		if p.rewriteAlways {
			b.WriteString(", rewriteAlways: true")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// rewriteProbe learns how CONFIG REWRITE writes each parameter: it
// starts a redis-server with a configuration file giving every parameter
// its value, its name in capitals, and has it rewrite the file. A line
// still in capitals is one it does not rewrite (an alias); a line gone is
// a string it leaves out when empty; the others show whether the value
// is written as CONFIG GET shows it, quoted, or as a size in units.
func rewriteProbe(dir string, params []param) map[string]string {
	port, err := freePort()
	if err != nil {
		log.Fatal(err)
	}
	file := dir + "/rewrite.conf"
	lines := map[string]string{}
	used := map[string]string{} // the value each line gives
	for _, p := range params {
		v := p.value
		switch {
		case p.name == "port":
			v = strconv.Itoa(port)
		case p.name == "dir":
			v = dir
		case p.name == "bind":
			v = "127.0.0.1"
		case p.name == "daemonize":
			v = "no"
		}
		used[p.name] = v
		if p.multiArg && v != "" {
			lines[p.name] = strings.ToUpper(p.name) + " " + v
		} else {
			lines[p.name] = strings.ToUpper(p.name) + " " + strconv.Quote(v)
		}
	}
	for {
		var b strings.Builder
		for _, p := range params {
			if l, ok := lines[p.name]; ok {
				b.WriteString(l + "\n")
			}
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
		cmd := exec.Command("redis-server", file)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		c, err := dial(fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil { // refused a line: leave it out and try again
			cmd.Wait()
			m := regexp.MustCompile(`>>> '(\S+)`).FindStringSubmatch(out.String())
			if m == nil {
				log.Fatalf("rewrite probe: %v\n%s", err, out)
			}
			log.Printf("rewrite probe: redis-server refuses %s at its value; not probed", m[1])
			delete(lines, strings.ToLower(m[1]))
			continue
		}
		if r := c.do("CONFIG", "REWRITE"); r.Str != "OK" {
			log.Fatalf("CONFIG REWRITE: %s", r.Str)
		}
		cmd.Process.Kill()
		cmd.Wait()
		break
	}
	text, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	written := map[string]string{}
	for _, l := range strings.Split(string(text), "\n") {
		name, _, _ := strings.Cut(l, " ")
		if name != "" && name[0] != '#' {
			written[strings.ToLower(name)] = l
			if name != strings.ToLower(name) {
				written[strings.ToLower(name)] = "ALIAS"
			}
		}
	}
	kinds := map[string]string{}
	for _, name := range writtenAtDefault(dir) {
		kinds[name+"/always"] = "yes"
	}
	for _, p := range params {
		if _, probed := lines[p.name]; !probed {
			continue
		}
		l, ok := written[p.name]
		v := used[p.name]
		switch {
		case l == "ALIAS" || (!ok && p.alias != "" && (v != "" || strings.Contains(p.name, "slave"))):
			// an alias's line is rewritten under the name it stands for
			kinds[p.name] = "alias"
		case !ok && v == "":
			kinds[p.name] = "nullable"
		case !ok:
			log.Fatalf("rewrite probe: %s left out at %q", p.name, v)
		case p.kind == "memory" && l == p.name+" "+formatMemory(v): // 0 and odd sizes look plain
			kinds[p.name] = "memory"
		case l == p.name+" "+v && !strings.HasPrefix(v, `"`):
			kinds[p.name] = "plain"
		case l == p.name+" "+strconv.Quote(v):
			kinds[p.name] = "quoted"
		default:
			kinds[p.name] = "special"
		}
	}
	return kinds
}

// writtenAtDefault returns the parameters CONFIG REWRITE writes into an
// empty file on a server started with none but its port: those it writes
// whatever their value.
func writtenAtDefault(dir string) []string {
	port, err := freePort()
	if err != nil {
		log.Fatal(err)
	}
	file := dir + "/empty.conf"
	if err := os.WriteFile(file, []byte("port "+strconv.Itoa(port)+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command("redis-server", file)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c, err := dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Fatal(err)
	}
	if r := c.do("CONFIG", "REWRITE"); r.Str != "OK" {
		log.Fatalf("CONFIG REWRITE: %s", r.Str)
	}
	text, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(text), "\n") {
		if name, _, _ := strings.Cut(l, " "); name != "" && name[0] != '#' && name != "port" && name != "user" {
			names = append(names, name)
		}
	}
	return names
}

// formatMemory is a size as CONFIG REWRITE writes it: in gb, mb or kb
// where it divides.
func formatMemory(v string) string {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n == 0 {
		return v
	}
	for _, u := range []struct {
		unit string
		size int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.unit
		}
	}
	return v
}

type conn struct {
	nc net.Conn
	rd *resp.Reader
	w  *bufio.Writer
}

func dial(addr string) (*conn, error) {
	var nc net.Conn
	var err error
	for range 100 {
		if nc, err = net.Dial("tcp", addr); err == nil {
			return &conn{nc: nc, rd: resp.NewReader(nc), w: bufio.NewWriter(nc)}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

func (c *conn) do(args ...string) resp.Value {
	c.w.Write(resp.AppendCommand(nil, args...))
	if err := c.w.Flush(); err != nil {
		log.Fatal(err)
	}
	v, err := c.rd.ReadValue()
	if err != nil {
		log.Fatal(err)
	}
	return v
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
