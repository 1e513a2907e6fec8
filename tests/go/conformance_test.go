// Behaviours the official Temporal Go SDK relies on, checked against a running server with the
// SDK used unchanged as client and worker. The Go SDK does not share the Rust core of the Python
// and Rust SDKs, and trips on things they forgive; each test names the behaviour it pins down.
//
// The same tests pass against the real Temporal dev server, which is how they were checked:
//
//	TEMPORAL_ADDRESS=127.0.0.1:7233 go test -count=1 ./...
//
// scripts/run-go-conformance runs them against a fresh `durin server start-dev`.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func dial(t *testing.T) client.Client {
	t.Helper()
	address := os.Getenv("TEMPORAL_ADDRESS")
	if address == "" {
		address = "127.0.0.1:7233"
	}
	c, err := client.Dial(client.Options{HostPort: address, Namespace: "default"})
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	t.Cleanup(c.Close)
	return c
}

// startWorker runs a worker on a fresh task queue for the test and returns the queue.
func startWorker(t *testing.T, c client.Client, options worker.Options, register func(worker.Worker)) string {
	t.Helper()
	tq := "go-" + t.Name() + "-" + uuid.NewString()[:8]
	w := worker.New(c, tq, options)
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return tq
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func id(t *testing.T) string {
	return t.Name() + "-" + uuid.NewString()[:8]
}

// --- describe ------------------------------------------------------------------------------

func Waiter(ctx workflow.Context) error {
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

// The SDK's DescribeWorkflow reads the search attributes unchecked: the server always sends
// them, empty or not (a nil map crashed the worker process).
func TestDescribeAlwaysCarriesSearchAttributesAndMemo(t *testing.T) {
	c := dial(t)
	ctx := ctxFor(t, 30*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: "nobody-polls"}, Waiter)
	if err != nil {
		t.Fatal(err)
	}
	defer c.TerminateWorkflow(ctx, run.GetID(), "", "test over")
	desc, err := c.DescribeWorkflow(ctx, run.GetID(), "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("status %v", desc.Status)
	}
	raw, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if raw.WorkflowExecutionInfo.SearchAttributes == nil || raw.WorkflowExecutionInfo.Memo == nil {
		t.Fatalf("search attributes or memo missing: %v", raw.WorkflowExecutionInfo)
	}
}

// --- local activities ----------------------------------------------------------------------

func SlowLocal(_ context.Context, d time.Duration) (string, error) {
	time.Sleep(d)
	return "slept " + d.String(), nil
}

func FlakyLocal(ctx context.Context) (int32, error) {
	attempt := activity.GetInfo(ctx).Attempt
	if attempt < 3 {
		return 0, fmt.Errorf("attempt %d fails", attempt)
	}
	return attempt, nil
}

func LocalActivities(ctx workflow.Context) (string, error) {
	long := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
	var parts []string
	// Longer than the workflow task timeout (2 s): the SDK keeps the task alive by completing
	// it with force_create_new_workflow_task and asking for the next one.
	var slept string
	if err := workflow.ExecuteLocalActivity(long, SlowLocal, 5*time.Second).Get(ctx, &slept); err != nil {
		return "", err
	}
	parts = append(parts, slept)
	// Retried with a backoff longer than the task timeout, on a timer of the server's.
	retrying := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 1.5, MaximumAttempts: 5,
		},
	})
	var attempt int32
	if err := workflow.ExecuteLocalActivity(retrying, FlakyLocal).Get(ctx, &attempt); err != nil {
		return "", err
	}
	parts = append(parts, fmt.Sprintf("flaky took %d", attempt))
	// Several at once, together longer than the task timeout.
	futures := []workflow.Future{}
	for i := 1; i <= 3; i++ {
		futures = append(futures, workflow.ExecuteLocalActivity(long, SlowLocal, time.Duration(i)*time.Second+time.Second))
	}
	for _, f := range futures {
		var s string
		if err := f.Get(ctx, &s); err != nil {
			return "", err
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; "), nil
}

func TestLongRetryingAndParallelLocalActivities(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) {
		w.RegisterWorkflow(LocalActivities)
		w.RegisterActivity(SlowLocal)
		w.RegisterActivity(FlakyLocal)
	})
	ctx := ctxFor(t, 90*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id(t), TaskQueue: tq, WorkflowTaskTimeout: 2 * time.Second,
	}, LocalActivities)
	if err != nil {
		t.Fatal(err)
	}
	var result string
	if err := run.Get(ctx, &result); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	want := "slept 5s; flaky took 3; slept 2s; slept 3s; slept 4s"
	if result != want {
		t.Fatalf("result %q, want %q", result, want)
	}
}

// --- id policies ---------------------------------------------------------------------------

func Quick(_ workflow.Context, fail bool) (string, error) {
	if fail {
		return "", temporal.NewApplicationError("failing on purpose", "Purpose")
	}
	return "done", nil
}

func isAlreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}

func TestIdReuseAndConflictPoliciesRefuse(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) {
		w.RegisterWorkflow(Quick)
		w.RegisterWorkflow(Waiter)
	})
	ctx := ctxFor(t, 60*time.Second)
	wid := id(t)
	// (Without WorkflowExecutionErrorWhenAlreadyStarted the SDK answers a refused start with
	// a handle on the run that is there.)
	start := func(opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
		opts.ID, opts.TaskQueue = wid, tq
		opts.WorkflowExecutionErrorWhenAlreadyStarted = true
		return c.ExecuteWorkflow(ctx, opts, wf, args...)
	}
	run, err := start(client.StartWorkflowOptions{}, Quick, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []enumspb.WorkflowIdReusePolicy{
		enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
	} {
		_, err := start(client.StartWorkflowOptions{WorkflowIDReusePolicy: policy}, Quick, false)
		if !isAlreadyStarted(err) {
			t.Fatalf("%v after a completed run: %v", policy, err)
		}
	}
	// A running one with the conflict policy Fail.
	if _, err := start(client.StartWorkflowOptions{}, Waiter); err != nil {
		t.Fatal(err)
	}
	_, err = start(client.StartWorkflowOptions{
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, Waiter)
	if !isAlreadyStarted(err) {
		t.Fatalf("conflict policy Fail on a running workflow: %v", err)
	}
	// Cancel and terminate naming a run that is not the one given must fail.
	if err := c.CancelWorkflow(ctx, wid, uuid.NewString()); err == nil {
		t.Fatal("cancel of a run id that does not exist succeeded")
	}
	if err := c.TerminateWorkflow(ctx, wid, uuid.NewString(), "no such run"); err == nil {
		t.Fatal("terminate of a run id that does not exist succeeded")
	}
	if err := c.TerminateWorkflow(ctx, wid, "", "test over"); err != nil {
		t.Fatal(err)
	}
}

func ReusesAChildID(ctx workflow.Context, childID string) (string, error) {
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:            childID,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}
	child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Quick, false)
	if err := child.Get(ctx, nil); err != nil {
		return "", err
	}
	again := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Quick, false)
	err := again.Get(ctx, nil)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	if errors.As(err, &started) {
		return "refused", nil
	}
	return "", fmt.Errorf("second child with a reused id: %v", err)
}

func TestChildWithReusedIdIsRefused(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) {
		w.RegisterWorkflow(Quick)
		w.RegisterWorkflow(ReusesAChildID)
	})
	ctx := ctxFor(t, 60*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: tq}, ReusesAChildID, id(t)+"-child")
	if err != nil {
		t.Fatal(err)
	}
	var result string
	if err := run.Get(ctx, &result); err != nil || result != "refused" {
		t.Fatalf("result %q, err %v", result, err)
	}
}

// --- schedules -----------------------------------------------------------------------------

func TestScheduleSpecsAreDescribedWithTemporalsDefaults(t *testing.T) {
	c := dial(t)
	ctx := ctxFor(t, 30*time.Second)
	sid := id(t)
	handle, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: sid,
		Spec: client.ScheduleSpec{
			Calendars:       []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: 5}}}},
			CronExpressions: []string{"30 2 * * MON"},
		},
		Action: &client.ScheduleWorkflowAction{ID: sid + "-wf", Workflow: Quick, Args: []any{false}, TaskQueue: "nobody-polls"},
		Paused: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer handle.Delete(context.Background())
	desc, err := handle.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := desc.Schedule.Spec.Calendars
	if len(got) != 2 {
		t.Fatalf("calendars %+v", got)
	}
	hourOnly := client.ScheduleCalendarSpec{
		Second:     []client.ScheduleRange{{Start: 0, End: 0, Step: 1}},
		Minute:     []client.ScheduleRange{{Start: 0, End: 0, Step: 1}},
		Hour:       []client.ScheduleRange{{Start: 5, End: 5, Step: 1}},
		DayOfMonth: []client.ScheduleRange{{Start: 1, End: 31, Step: 1}},
		Month:      []client.ScheduleRange{{Start: 1, End: 12, Step: 1}},
		DayOfWeek:  []client.ScheduleRange{{Start: 0, End: 6, Step: 1}},
	}
	if fmt.Sprintf("%+v", got[0]) != fmt.Sprintf("%+v", hourOnly) {
		t.Fatalf("calendar given only an hour:\n got %+v\nwant %+v", got[0], hourOnly)
	}
	cron := client.ScheduleCalendarSpec{
		Second:     []client.ScheduleRange{{Start: 0, End: 0, Step: 1}},
		Minute:     []client.ScheduleRange{{Start: 30, End: 30, Step: 1}},
		Hour:       []client.ScheduleRange{{Start: 2, End: 2, Step: 1}},
		DayOfMonth: []client.ScheduleRange{{Start: 1, End: 31, Step: 1}},
		Month:      []client.ScheduleRange{{Start: 1, End: 12, Step: 1}},
		DayOfWeek:  []client.ScheduleRange{{Start: 1, End: 1, Step: 1}},
	}
	if fmt.Sprintf("%+v", got[1]) != fmt.Sprintf("%+v", cron) {
		t.Fatalf("cron \"30 2 * * MON\":\n got %+v\nwant %+v", got[1], cron)
	}
	// An update that sets no search attributes leaves none.
	err = handle.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	desc, err = handle.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(desc.SearchAttributes.GetIndexedFields()); n != 0 {
		t.Fatalf("search attributes after an update that set none: %v", desc.SearchAttributes)
	}
}

// --- queries, priority, updates ------------------------------------------------------------

func BigAnswer(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, "big", func(size int) (string, error) {
		return strings.Repeat("x", size), nil
	}); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

// A query result over the blob size limit (2 MiB) fails the query with the error Temporal
// gives; a small one still answers. (The worker's own check of the limit the namespace
// advertises is turned off, so the answer reaches the server.)
func TestOversizedQueryResultFails(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{DisablePayloadErrorLimit: true}, func(w worker.Worker) { w.RegisterWorkflow(BigAnswer) })
	ctx := ctxFor(t, 60*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: tq}, BigAnswer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.TerminateWorkflow(context.Background(), run.GetID(), "", "test over")
	if _, err := c.QueryWorkflow(ctx, run.GetID(), "", "big", 10); err != nil {
		t.Fatalf("small query: %v", err)
	}
	_, err = c.QueryWorkflow(ctx, run.GetID(), "", "big", 3*1024*1024)
	var failed *serviceerror.QueryFailed
	if !errors.As(err, &failed) || !strings.Contains(err.Error(), "Blob data size exceeds limit.") {
		t.Fatalf("a 3 MiB query result: %v (%T)", err, err)
	}
}

func PriorityEcho(ctx context.Context) (int, error) {
	return activity.GetInfo(ctx).Priority.PriorityKey, nil
}

func PriorityWorkflow(ctx workflow.Context) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		Priority:            temporal.Priority{PriorityKey: 3},
	})
	var key int
	err := workflow.ExecuteActivity(ctx, PriorityEcho).Get(ctx, &key)
	return key, err
}

// The task-queue priority an activity is scheduled with reaches it (the workflow's own does
// not, on Temporal either).
func TestActivityPriorityReachesTheActivity(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) {
		w.RegisterWorkflow(PriorityWorkflow)
		w.RegisterActivity(PriorityEcho)
	})
	ctx := ctxFor(t, 30*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id(t), TaskQueue: tq, Priority: temporal.Priority{PriorityKey: 1},
	}, PriorityWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	var key int
	if err := run.Get(ctx, &key); err != nil || key != 3 {
		t.Fatalf("activity saw priority key %d (err %v), want 3", key, err)
	}
}

func UpdatesThenCancel(ctx workflow.Context) error {
	registered := false
	if err := workflow.SetUpdateHandler(ctx, "hang", func(ctx workflow.Context) (string, error) {
		// A handler registered inside an update handler works.
		if !registered {
			registered = true
			if err := workflow.SetUpdateHandler(ctx, "inner", func(workflow.Context) (string, error) {
				return "inner ran", nil
			}); err != nil {
				return "", err
			}
		}
		return "", workflow.Await(ctx, func() bool { return false })
	}); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// Cancelling a workflow with updates in flight fails those updates as canceled.
func TestCancelFailsUpdatesInFlight(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) { w.RegisterWorkflow(UpdatesThenCancel) })
	ctx := ctxFor(t, 60*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: tq}, UpdatesThenCancel)
	if err != nil {
		t.Fatal(err)
	}
	update, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: "hang", WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: "inner", WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		t.Fatalf("update handler registered inside a handler: %v", err)
	}
	var said string
	if err := inner.Get(ctx, &said); err != nil || said != "inner ran" {
		t.Fatalf("inner update: %q %v", said, err)
	}
	if err := c.CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	err = update.Get(ctx, nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("update in flight when the workflow was canceled: %v (%T)", err, err)
	}
}

// --- non-determinism -----------------------------------------------------------------------

func DriftV1(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteActivity(ctx, PriorityEcho).Get(ctx, nil); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

func DriftV2(ctx workflow.Context) error {
	// The code changed under the running workflow: a timer where history has an activity.
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return nil
}

// A non-determinism failure is recorded with its cause.
func TestNonDeterminismFailureReportsItsCause(t *testing.T) {
	c := dial(t)
	ctx := ctxFor(t, 60*time.Second)
	tq := "go-drift-" + uuid.NewString()[:8]
	first := worker.New(c, tq, worker.Options{})
	first.RegisterWorkflowWithOptions(DriftV1, workflow.RegisterOptions{Name: "Drift"})
	first.RegisterActivity(PriorityEcho)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: tq}, "Drift")
	if err != nil {
		t.Fatal(err)
	}
	defer c.TerminateWorkflow(context.Background(), run.GetID(), "", "test over")
	waitFor(t, ctx, "the activity to complete", func() bool {
		return hasEvent(ctx, c, run.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) &&
			hasEvent(ctx, c, run.GetID(), enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
	})
	first.Stop()
	second := worker.New(c, tq, worker.Options{})
	second.RegisterWorkflowWithOptions(DriftV2, workflow.RegisterOptions{Name: "Drift"})
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	if err := c.SignalWorkflow(ctx, run.GetID(), "", "go", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "a non-determinism workflow task failure", func() bool {
		iter := c.GetWorkflowHistory(ctx, run.GetID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			event, err := iter.Next()
			if err != nil {
				return false
			}
			if a := event.GetWorkflowTaskFailedEventAttributes(); a != nil {
				if a.Cause != enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR {
					t.Fatalf("workflow task failed with cause %v: %v", a.Cause, a.Failure)
				}
				return true
			}
		}
		return false
	})
}

func hasEvent(ctx context.Context, c client.Client, wid string, kind enumspb.EventType) bool {
	iter := c.GetWorkflowHistory(ctx, wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		event, err := iter.Next()
		if err != nil {
			return false
		}
		if event.EventType == kind {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// --- namespace capabilities ----------------------------------------------------------------

// The capability is advertised only because the server keeps its promise: when a worker
// shuts down, its outstanding polls are answered at once.
func TestWorkerPollCompleteOnShutdown(t *testing.T) {
	c := dial(t)
	ctx := ctxFor(t, 30*time.Second)
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if !ns.GetNamespaceInfo().GetCapabilities().GetWorkerPollCompleteOnShutdown() {
		t.Skip("the server does not advertise worker_poll_complete_on_shutdown")
	}
	tq := "go-shutdown-" + uuid.NewString()[:8]
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(Waiter)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the pollers are waiting on the server now
	began := time.Now()
	w.Stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("worker took %v to stop", took)
	}
}

// --- reset ---------------------------------------------------------------------------------

func Seeded(ctx workflow.Context) ([]int64, error) {
	var draws []int64
	draw := func() int64 {
		var n int64
		_ = workflow.SideEffect(ctx, func(workflow.Context) any { return time.Now().UnixNano() }).Get(&n)
		return n
	}
	draws = append(draws, draw())
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	draws = append(draws, draw())
	return draws, nil
}

// A reset to the first workflow task makes a new run that replays the shared history and
// receives the signal again.
func TestResetReappliesSignals(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) { w.RegisterWorkflow(Seeded) })
	ctx := ctxFor(t, 60*time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: tq}, Seeded)
	if err != nil {
		t.Fatal(err)
	}
	var before []int64
	if err := c.SignalWorkflow(ctx, run.GetID(), "", "go", nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &before); err != nil {
		t.Fatal(err)
	}
	resp, err := c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		Reason:                    "go test",
		WorkflowTaskFinishEventId: 4,
		RequestId:                 uuid.NewString(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var after []int64
	if err := c.GetWorkflow(ctx, run.GetID(), resp.RunId).Get(ctx, &after); err != nil {
		t.Fatalf("reset run: %v", err)
	}
	if len(after) != 2 || after[0] == before[0] {
		t.Fatalf("before %v, after reset %v", before, after)
	}
}

// ChildWaiter returns what its "go" signal carries.
func ChildWaiter(ctx workflow.Context) (string, error) {
	var said string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &said)
	return said, nil
}

// ParentOfWaiter runs ChildWaiter under a fixed id and returns its result.
func ParentOfWaiter(ctx workflow.Context, childID string) (string, error) {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: childID})
	var result string
	err := workflow.ExecuteChildWorkflow(ctx, ChildWaiter).Get(ctx, &result)
	return "parent got " + result, err
}

// A reset to a point after the child started keeps the child: it goes on running, and its
// result reaches the new run.
func TestResetKeepsARunningChild(t *testing.T) {
	c := dial(t)
	tq := startWorker(t, c, worker.Options{}, func(w worker.Worker) {
		w.RegisterWorkflow(ParentOfWaiter)
		w.RegisterWorkflow(ChildWaiter)
	})
	ctx := ctxFor(t, 60*time.Second)
	childID := id(t) + "-child"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id(t), TaskQueue: tq}, ParentOfWaiter, childID)
	if err != nil {
		t.Fatal(err)
	}
	// The child has started once the parent has completed a workflow task after its start.
	var point int64
	for point == 0 {
		iter := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		started := false
		for iter.HasNext() {
			event, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			switch event.GetEventType() {
			case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
				started = true
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				if started {
					point = event.GetEventId()
				}
			}
		}
		if point == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	resp, err := c.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 "default",
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		Reason:                    "go test",
		WorkflowTaskFinishEventId: point,
		RequestId:                 uuid.NewString(),
	})
	if err != nil {
		t.Fatal(err)
	}
	child, err := c.DescribeWorkflowExecution(ctx, childID, "")
	if err != nil {
		t.Fatal(err)
	}
	if status := child.GetWorkflowExecutionInfo().GetStatus(); status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the child after the parent's reset: %v", status)
	}
	if err := c.SignalWorkflow(ctx, childID, "", "go", "kept"); err != nil {
		t.Fatal(err)
	}
	var result string
	if err := c.GetWorkflow(ctx, run.GetID(), resp.RunId).Get(ctx, &result); err != nil {
		t.Fatalf("reset run: %v", err)
	}
	if result != "parent got kept" {
		t.Fatalf("reset run returned %q", result)
	}
}
