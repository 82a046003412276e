// Package storetest is the contract test suite of store.Store. Every engine runs the same
// suite (internal/store/sqlite and internal/store/postgres call Run from their tests), so
// that neither falls behind the other: what a test here asserts is what every caller of
// store.Store may rely on, whichever engine is configured.
//
// Each subtest gets a fresh store from open, migrates it, and closes it at the end. The
// subtests run in parallel.
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/postroom/postroom/internal/store"
)

// Run runs the contract suite against stores returned by open. open must return a fresh,
// empty, not yet migrated store; Run migrates and closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Migrate", testMigrate},
		{"Settings", testSettings},
		{"SchemaVersion", testSchemaVersion},
		{"Backup", testBackup},
		{"ResealSecrets", testResealSecrets},
		{"AliveNodes", testAliveNodes},
		{"SSOSignIns", testSSOSignIns},
		{"SSOSignInConcurrentTake", testSSOSignInConcurrentTake},
		{"ExternalIdentities", testExternalIdentities},
		{"Mailboxes", testMailboxes},
		{"MailboxDefault", testMailboxDefault},
		{"MailboxStatus", testMailboxStatus},
		{"MailboxDelete", testMailboxDelete},
		{"MailboxAdminFields", testMailboxAdminFields},
		{"MailboxAuth", testMailboxAuth},
		{"MailboxAutodiscoverHost", testMailboxAutodiscoverHost},
		{"MailboxEnabled", testMailboxEnabled},
		{"EnabledInboundIDs", testEnabledInboundIDs},
		{"Queues", testQueues},
		{"EnsureDefaultQueueConcurrent", testEnsureDefaultQueueConcurrent},
		{"AssignMailbox", testAssignMailbox},
		{"SetQueueEnabled", testSetQueueEnabled},
		{"FromAddresses", testFromAddresses},
		{"IngestOverSize", testIngestOverSize},
		{"AutoReply", testAutoReply},
		{"Acknowledgement", testAcknowledgement},
		{"AutoTemplates", testAutoTemplates},
		{"AutoReplyRollback", testAutoReplyRollback},
		{"AutoReplyAfterFutureDate", testAutoReplyAfterFutureDate},
		{"CountMessagesSince", testCountMessagesSince},
		{"AuditFor", testAuditFor},
		{"IngestRoundTrip", testIngestRoundTrip},
		{"IngestDuplicate", testIngestDuplicate},
		{"IngestSecondKey", testIngestSecondKey},
		{"IngestSecondKeyNeedsMessageID", testIngestSecondKeyNeedsMessageID},
		{"MessageIDCollision", testMessageIDCollision},
		{"IngestLinkedOverSize", testIngestLinkedOverSize},
		{"IngestFailures", testIngestFailures},
		{"CountOutbox", testCountOutbox},
		{"IngestReceivedAt", testIngestReceivedAt},
		{"IngestRollback", testIngestRollback},
		{"IngestCancelled", testIngestCancelled},
		{"IngestCleansText", testIngestCleansText},
		{"IngestMessages", testIngestMessages},
		{"IngestMessagesRollback", testIngestMessagesRollback},
		{"IngestLarge", testIngestLarge},
		{"Threading", testThreading},
		{"WorkItemReuse", testWorkItemReuse},
		{"CursorAndAcks", testCursorAndAcks},
		{"CountMessages", testCountMessages},
		{"ConversationMessages", testConversationMessages},
		{"ListWorkItems", testListWorkItems},
		{"Search", testSearch},
		{"SearchConversation", testSearchConversation},
		{"SearchLarge", testSearchLarge},
		{"SearchPaging", testSearchPaging},
		{"SearchDense", testSearchDense},
		{"SavedViews", testSavedViews},
		{"WorkItemState", testWorkItemState},
		{"CreateReply", testCreateReply},
		{"CreateReplyMissingWorkItem", testCreateReplyMissingWorkItem},
		{"CreateForward", testCreateForward},
		{"CreateOutbound", testCreateOutbound},
		{"OutboxLifecycle", testOutboxLifecycle},
		{"OutboxConcurrentClaims", testOutboxConcurrentClaims},
		{"OutboxOutcome", testOutboxOutcome},
		{"OutboxClaimRelease", testOutboxClaimRelease},
		{"Users", testUsers},
		{"UpdateUser", testUpdateUser},
		{"LastAdmin", testLastAdmin},
		{"DeleteUser", testDeleteUser},
		{"Teams", testTeams},
		{"Agents", testAgents},
		{"AgentLoads", testAgentLoads},
		{"RoutingObjects", testRoutingObjects},
		{"RoutingAudit", testRoutingAudit},
		{"AutomaticMail", testAutomaticMail},
		{"Bounce", testBounce},
		{"Notes", testNotes},
		{"ResponseTemplates", testResponseTemplates},
		{"Signatures", testSignatures},
		{"Drafts", testDrafts},
		{"ApplyChanges", testApplyChanges},
		{"Capacity", testCapacity},
		{"RoutingItems", testRoutingItems},
		{"ConcurrentClaims", testConcurrentClaims},
		{"QueueDepths", testQueueDepths},
		{"HourlyStats", testHourlyStats},
		{"History", testHistory},
		{"IngestClassification", testIngestClassification},
		{"NextResponseClock", testNextResponseClock},
		{"Sessions", testSessions},
		{"APITokens", testAPITokens},
		{"SessionList", testSessionList},
		{"APITokenScopes", testAPITokenScopes},
		{"PendingSignIns", testPendingSignIns},
		{"SignInThrottle", testSignInThrottle},
		{"SignInThrottleConcurrent", testSignInThrottleConcurrent},
		{"SecondFactors", testSecondFactors},
		{"PendingSignInLimit", testPendingSignInLimit},
		{"PendingSignInMailboxDelete", testPendingSignInMailboxDelete},
		{"PendingSignInConcurrentTake", testPendingSignInConcurrentTake},
		{"Audit", testAudit},
		{"ConcurrentIngest", testConcurrentIngest},
		{"RetentionDelete", testRetentionDelete},
		{"RetentionAnonymise", testRetentionAnonymise},
		{"Erasure", testErasure},
		{"AuditSearch", testAuditSearch},
		{"GraphSubscriptions", testGraphSubscriptions},
		{"Leases", testLeases},
		{"LeaseFencing", testLeaseFencing},
		{"LeaseConcurrentTakers", testLeaseConcurrentTakers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close store: %v", err)
				}
			})
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

// wantErr fails the test unless err is (or wraps) target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// must fails the test at once on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// sameTime fails the test unless got is the instant want and in UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

// recent fails the test unless got was set by the store during this test (not zero, UTC).
func recent(t *testing.T, what string, got, start time.Time) {
	t.Helper()
	if got.IsZero() || got.Before(start.Add(-time.Second)) {
		t.Errorf("%s = %v, want a time set by the store after %v", what, got, start)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

// waitPast waits until the clock is past t by at least the microsecond the stores keep,
// so that a time the store sets next is later than t. It asserts nothing about time.
func waitPast(t time.Time) {
	for time.Now().Before(t.Add(time.Microsecond)) {
		time.Sleep(time.Millisecond)
	}
}

// getMailbox reads a mailbox and fails the test on error.
func getMailbox(t *testing.T, s store.Store, id int64) store.Mailbox {
	t.Helper()
	m, err := s.Mailbox(t.Context(), id)
	must(t, "Mailbox", err)
	return m
}

// newMailbox creates a mailbox named name.
func newMailbox(t *testing.T, s store.Store, name, direction string) store.Mailbox {
	t.Helper()
	protocol := "imap"
	if direction == store.Outbound {
		protocol = "smtp"
	}
	m, err := s.CreateMailbox(t.Context(), store.Mailbox{
		Name:      name,
		Direction: direction,
		Protocol:  protocol,
		Address:   name + "@example.com",
		Host:      "mail.example.com",
		Port:      993,
		Security:  "tls",
		Login:     name,
		Folder:    "INBOX",
		MaxSizeMB: 25,
		Enabled:   true,
	})
	must(t, "CreateMailbox "+name, err)
	return m
}

// mail builds an inbound message for mailbox mb with a source id, a Message-ID and a
// subject.
func mail(mb store.Mailbox, sourceID, messageID, subject string) store.InboundMessage {
	raw := fmt.Sprintf("Message-ID: <%s>\r\nSubject: %s\r\nFrom: Customer <customer@example.org>\r\n\r\nHello.\r\n", messageID, subject)
	return store.InboundMessage{
		MailboxID: mb.ID,
		Raw:       []byte(raw),
		Message: store.Message{
			SourceID:  sourceID,
			MessageID: messageID,
			Subject:   subject,
			FromName:  "Customer",
			FromAddr:  "customer@example.org",
			To:        mb.Address,
			Date:      time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC),
			TextBody:  "Hello.",
		},
	}
}

// reply makes in a reply to the message with id parent.
func reply(in store.InboundMessage, parent string, refs ...string) store.InboundMessage {
	in.Message.InReplyTo = parent
	in.Message.References = refs
	return in
}

// ingest stores in and fails the test on error.
func ingest(t *testing.T, s store.Store, in store.InboundMessage) store.IngestResult {
	t.Helper()
	res, err := s.IngestMessage(t.Context(), in)
	must(t, "IngestMessage "+in.Message.SourceID, err)
	if res.Duplicate {
		t.Fatalf("IngestMessage %s: unexpected duplicate", in.Message.SourceID)
	}
	return res
}

// listAll lists every work item.
func listAll(t *testing.T, s store.Store) []store.WorkItem {
	t.Helper()
	list, err := s.ListWorkItems(t.Context(), store.WorkItemFilter{Limit: 10000})
	must(t, "ListWorkItems", err)
	return list
}

// ids returns the ids of work items, in order.
func ids(list []store.WorkItem) []int64 {
	out := make([]int64, len(list))
	for i, w := range list {
		out[i] = w.ID
	}
	return out
}

// equalIDs fails the test unless got and want hold the same ids in the same order.
func equalIDs(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// getWorkItem reads a work item and fails the test on error.
func getWorkItem(t *testing.T, s store.Store, id int64) store.WorkItem {
	t.Helper()
	w, err := s.WorkItem(t.Context(), id)
	must(t, "WorkItem", err)
	return w
}

// apply applies changes in one batch and fails the test at once on a store error; the
// results are returned for the caller to check.
func apply(t *testing.T, s store.Store, changes ...store.Change) []store.ChangeResult {
	t.Helper()
	res, err := s.ApplyChanges(t.Context(), changes)
	must(t, "ApplyChanges", err)
	if len(res) != len(changes) {
		t.Fatalf("ApplyChanges returned %d results for %d changes", len(res), len(changes))
	}
	return res
}

// change applies one change that must succeed.
func change(t *testing.T, s store.Store, c store.Change) {
	t.Helper()
	if res := apply(t, s, c); res[0].Err != nil {
		t.Fatalf("change of work item %d from %v to %s: %v", c.WorkItemID, c.From, c.To, res[0].Err)
	}
}

// newAgent creates a user with the agent role.
func newAgent(t *testing.T, s store.Store, username string) store.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), store.User{Username: username, DisplayName: username, Role: store.RoleAgent, PasswordHash: "h"})
	must(t, "CreateUser "+username, err)
	return u
}

// ptr returns a pointer to v (the optional fields of store.Change).
func ptr[T any](v T) *T { return &v }
