package runtime

import "strings"

// LogText returns the text of a line of a task log (see TaskSpec.LogPath) without its
// "<time> <stdout|stderr> " prefix; a line without that prefix is returned as it is.
func LogText(line string) string {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok || len(ts) < 20 || ts[4] != '-' || ts[10] != 'T' {
		return line
	}
	stream, text, ok := strings.Cut(rest, " ")
	if !ok {
		if rest == "stdout" || rest == "stderr" {
			return "" // an empty line
		}
		return line
	}
	if stream != "stdout" && stream != "stderr" {
		return line
	}
	return text
}
