package web

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postroom/postroom/internal/testenv"
)

// screenshotDirEnv names the directory where browser tests save their screenshots for
// review (scripts/test sets it to the test output); without it they go to a temp dir.
const screenshotDirEnv = "POSTROOM_SCREENSHOTS"

// screenshotWidth and screenshotHeight are the browser window of the screenshots: a
// common laptop screen, wide enough for the table and its detail pane side by side.
const (
	screenshotWidth  = 1400
	screenshotHeight = 900
)

// screenshot saves the whole page as name.png and logs its path.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := get(t, ctx, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(screenshotDirEnv)
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	return dir
}

// adminBrowser is a headless Chromium with the screenshots' window size, signed in as
// admin, and the directory for the test's screenshots.
func adminBrowser(t *testing.T, f *fixture) (context.Context, string) {
	t.Helper()
	ctx := testenv.Chromium(t)
	shots := screenshotDir(t)
	do(t, ctx, chromedp.EmulateViewport(screenshotWidth, screenshotHeight))
	signInInBrowser(t, ctx, f, "admin")
	return ctx, shots
}

// tableRows returns the Mailbox Name cells of the mailbox table, in order.
func tableRows(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.mailboxes tbody td.name a")].map(a => a.textContent.trim())`))
}

func TestBrowserMailboxesPage(t *testing.T) {
	f := newFixture(t)
	ctx, shots := adminBrowser(t, f)

	do(t, ctx,
		chromedp.Click(`//nav/a[text()="Mailboxes"]`),
		chromedp.WaitVisible(chromedp.CSS("table.mailboxes")),
	)
	if rows := tableRows(t, ctx); strings.Join(rows, ",") != "support,support-out" {
		t.Fatalf("mailbox table rows = %q", rows)
	}
	header := get(t, ctx, chromedp.Text(chromedp.CSS("table.mailboxes thead")))
	for _, col := range []string{"Mailbox Name", "Mailbox", "Host", "Mailbox Type", "Client Type", "Status"} {
		if !strings.Contains(header, col) {
			t.Errorf("table header %q lacks %q", header, col)
		}
	}
	errorRow := get(t, ctx, chromedp.Text(chromedp.ID("mailbox-"+itoa(f.inbound.ID))))
	for _, want := range []string{"Inbound", "IMAP", "error", "login refused: check the password", "last OK never"} {
		if !strings.Contains(errorRow, want) {
			t.Errorf("row of support = %q, lacks %q", errorRow, want)
		}
	}
	// An enabled mailbox's box is red, like the seed's.
	outline := get(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#mailbox-`+itoa(f.inbound.ID)+` td.pick input")).outlineColor`))
	if outline != "rgb(179, 38, 30)" {
		t.Errorf("enabled row's checkbox outline = %q, want red", outline)
	}
	screenshot(t, ctx, shots, "01-mailboxes")

	// Add Mailbox ▸ Inbound, with two bad values.
	do(t, ctx,
		chromedp.Click(chromedp.ID("add-inbound")),
		chromedp.WaitVisible(chromedp.ID("name")),
	)
	if v := get(t, ctx, chromedp.Value(chromedp.ID("max_size_mb"))); v != "5" {
		t.Errorf("Max size default = %q, want 5", v)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("name"), "orders desk"),
		chromedp.SendKeys(chromedp.ID("login"), "orders@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), secretPassword),
		chromedp.SendKeys(chromedp.ID("host"), "imap.example.com"),
		chromedp.SetValue(chromedp.ID("max_size_mb"), "21"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("form-errors")),
	)
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("name-error"))); !strings.Contains(msg, "no spaces") {
		t.Errorf("error next to Mailbox Name = %q", msg)
	}
	if msg := get(t, ctx, chromedp.Text(chromedp.ID("max_size_mb-error"))); !strings.Contains(msg, "from 5 to 20") {
		t.Errorf("error next to Max size = %q", msg)
	}
	if v := get(t, ctx, chromedp.Value(chromedp.ID("login"))); v != "orders@example.com" {
		t.Errorf("login after the refused form = %q, want it kept", v)
	}
	if v := get(t, ctx, chromedp.Value(chromedp.ID("password"))); v != "" {
		t.Error("the password field is filled after the refused form")
	}
	if note := get(t, ctx, chromedp.Text(chromedp.ID("retype-password"))); !strings.Contains(note, "Type the password again") {
		t.Errorf("password note after the refused form = %q", note)
	}
	screenshot(t, ctx, shots, "02-form-errors")

	// Corrected: saved, disabled, selected in the list.
	do(t, ctx,
		chromedp.Clear(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "orders_desk"),
		chromedp.SetValue(chromedp.ID("max_size_mb"), "20"),
		chromedp.SendKeys(chromedp.ID("password"), secretPassword),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	if n := get(t, ctx, chromedp.Text(chromedp.ID("notice"))); !strings.Contains(n, "Mailbox created.") {
		t.Errorf("notice = %q", n)
	}
	m := f.mailboxNamed(t, "orders_desk")
	if m.MaxSizeMB != 20 || m.Enabled {
		t.Errorf("created mailbox: Max size %d, enabled %v; want 20 and disabled", m.MaxSizeMB, m.Enabled)
	}
	if h := get(t, ctx, chromedp.Text(chromedp.CSS("#detail h2"))); h != "orders_desk" {
		t.Errorf("detail pane shows %q, want the new mailbox", h)
	}

	// Show: Outbound, then Inbound.
	do(t, ctx, chromedp.Click(chromedp.ID("show-outbound")), chromedp.WaitVisible(chromedp.CSS(`#show-outbound[aria-current]`)))
	if rows := tableRows(t, ctx); strings.Join(rows, ",") != "support-out" {
		t.Errorf("Show Outbound rows = %q", rows)
	}
	do(t, ctx, chromedp.Click(chromedp.ID("show-inbound")), chromedp.WaitVisible(chromedp.CSS(`#show-inbound[aria-current]`)))
	if rows := tableRows(t, ctx); strings.Join(rows, ",") != "orders_desk,support" {
		t.Errorf("Show Inbound rows = %q", rows)
	}

	// Search within the inbound ones, then open a row's detail pane.
	do(t, ctx,
		chromedp.Click(chromedp.ID("show-all")), chromedp.WaitVisible(chromedp.CSS(`#show-all[aria-current]`)),
		chromedp.SendKeys(chromedp.ID("mq"), "example.com"),
	)
	submit(t, ctx, chromedp.Click(chromedp.CSS("form.search button")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("clear-search")))
	if rows := tableRows(t, ctx); strings.Join(rows, ",") != "orders_desk,support,support-out" {
		t.Errorf("search example.com rows = %q", rows)
	}
	do(t, ctx, chromedp.SetValue(chromedp.ID("mq"), "smtp."))
	submit(t, ctx, chromedp.Click(chromedp.CSS("form.search button")))
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("clear-search")))
	if rows := tableRows(t, ctx); strings.Join(rows, ",") != "support-out" {
		t.Errorf("search smtp. rows = %q", rows)
	}
	do(t, ctx,
		chromedp.Click(`//td[@class="name"]/a[text()="support-out"]`),
		chromedp.WaitVisible(chromedp.CSS("#detail h2")),
	)
	pane := get(t, ctx, chromedp.Text(chromedp.ID("detail")))
	for _, want := range []string{"support-out", "Outbound", "SMTP", "smtp.example.com", "587", "STARTTLS", "Default outbound", "From addresses", "Manage From addresses"} {
		if !strings.Contains(pane, want) {
			t.Errorf("detail pane lacks %q:\n%s", want, pane)
		}
	}
	if q := get(t, ctx, chromedp.Value(chromedp.ID("mq"))); q != "smtp." {
		t.Errorf("search box after selecting a row = %q, want the search kept", q)
	}

	// The new mailbox's pane, with its history, for the screenshot.
	do(t, ctx,
		chromedp.Click(chromedp.ID("clear-search")),
		chromedp.WaitVisible(chromedp.CSS("table.mailboxes")),
		chromedp.Click(`//td[@class="name"]/a[text()="orders_desk"]`),
		chromedp.WaitVisible(chromedp.CSS("#detail h2")),
	)
	pane = get(t, ctx, chromedp.Text(chromedp.ID("detail")))
	for _, want := range []string{"orders_desk", "Password", "set", "Max size", "20 MB", "mailbox.create by admin", "Queue", "none"} {
		if !strings.Contains(pane, want) {
			t.Errorf("detail pane of orders_desk lacks %q:\n%s", want, pane)
		}
	}
	if strings.Contains(get(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)), secretPassword) {
		t.Error("the page contains the mailbox password")
	}
	screenshot(t, ctx, shots, "03-detail-pane")

	// Edit, point it at a closed local port and test (with the password typed again: the
	// stored one only goes to the server it was entered for): the failed step says what to
	// do, and the form keeps what was typed.
	port := itoa(int64(closedPort(t)))
	do(t, ctx,
		chromedp.Click(chromedp.ID("edit")),
		chromedp.WaitVisible(chromedp.ID("host")),
	)
	if ro := get(t, ctx, chromedp.Evaluate[bool](`document.getElementById("name").readOnly`)); !ro {
		t.Error("Mailbox Name is editable on the edit form")
	}
	do(t, ctx,
		chromedp.SetValue(chromedp.ID("host"), "127.0.0.1"),
		chromedp.SetValue(chromedp.ID("security"), "none"),
		chromedp.SetValue(chromedp.ID("port"), port),
		chromedp.SetValue(chromedp.ID("password"), "typed-again-pw"),
		chromedp.Click(chromedp.ID("test-connection")),
		chromedp.WaitVisible(chromedp.ID("test-report")),
	)
	report := get(t, ctx, chromedp.Text(chromedp.ID("test-report")))
	if !strings.Contains(report, "failed") || !strings.Contains(report, "fail") || !strings.Contains(report, port) {
		t.Errorf("test report = %q, want a failed connection to port %s", report, port)
	}
	if advice := get(t, ctx, chromedp.Text(chromedp.CSS("#test-report .advice"))); advice == "" {
		t.Error("the failed step gives no advice")
	}
	if v := get(t, ctx, chromedp.Value(chromedp.ID("port"))); v != port {
		t.Errorf("port after the test = %q, want %s kept", v, port)
	}
	screenshot(t, ctx, shots, "04-test-connection")
}

func TestBrowserFromAddressesAndQueues(t *testing.T) {
	f := newFixture(t)
	ctx, shots := adminBrowser(t, f)

	// From the outbound mailbox's pane to its From addresses; add one.
	do(t, ctx,
		chromedp.Navigate(f.srv.URL+"/mailboxes?selected="+itoa(f.outbound.ID)),
		chromedp.Click(chromedp.ID("manage-from")),
		chromedp.WaitVisible(chromedp.ID("add-from")),
		chromedp.SendKeys(chromedp.ID("address"), "sales@example.com"),
		chromedp.SendKeys(chromedp.ID("display_name"), "Example Sales"),
		chromedp.Click(chromedp.ID("add-from")),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	row := get(t, ctx, chromedp.Text(chromedp.CSS("table.froms tbody tr")))
	if !strings.Contains(row, "sales@example.com") || !strings.Contains(row, "Example Sales") {
		t.Errorf("From address row = %q", row)
	}
	screenshot(t, ctx, shots, "01-from-addresses")

	// Queues: create one; the Default queue lists the seeded inbound mailbox.
	do(t, ctx,
		chromedp.Click(`//nav/a[text()="Queues"]`),
		chromedp.WaitVisible(chromedp.ID("create-queue")),
		chromedp.SendKeys(chromedp.ID("queue-name"), "Billing"),
		chromedp.Click(chromedp.ID("create-queue")),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	table := get(t, ctx, chromedp.Text(chromedp.CSS("table.queues")))
	for _, want := range []string{"Default", "support", "Billing", "none"} {
		if !strings.Contains(table, want) {
			t.Errorf("queues table lacks %q:\n%s", want, table)
		}
	}
	screenshot(t, ctx, shots, "02-queues")
}
