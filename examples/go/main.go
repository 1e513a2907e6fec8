// A tour of Durin with the official Temporal Go SDK (go.temporal.io/sdk), used unchanged.
//
// One worker and one client in a single program: a workflow that calls an activity, sleeps on a
// durable timer, answers a query, accepts (and validates) an update, waits for a signal and runs
// a child workflow; then a schedule that starts the child workflow on its own. It prints what
// happened and exits 0, or exits 1 with the reason.
//
//	go run . # against TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE (default "default")
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Order is the tour workflow's input.
type Order struct {
	Customer string
	Items    []string
}

// Greet is the activity: ordinary Go code, retried by the server's retry policy.
func Greet(_ context.Context, name string) (string, error) {
	return "Hello, " + name + "!", nil
}

// Pack is the child workflow: it counts the items it was given.
func Pack(_ workflow.Context, items []string) (string, error) {
	return fmt.Sprintf("packed %d items", len(items)), nil
}

// OrderWorkflow walks through every feature the tour shows.
func OrderWorkflow(ctx workflow.Context, order Order) (string, error) {
	stage := "started"
	if err := workflow.SetQueryHandler(ctx, "stage", func() (string, error) { return stage, nil }); err != nil {
		return "", err
	}
	// An update adds an item; the validator rejects empty names before anything is recorded.
	err := workflow.SetUpdateHandlerWithOptions(ctx, "add-item",
		func(_ workflow.Context, item string) (int, error) {
			order.Items = append(order.Items, item)
			return len(order.Items), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, item string) error {
			if strings.TrimSpace(item) == "" {
				return errors.New("an item needs a name")
			}
			return nil
		}})
	if err != nil {
		return "", err
	}

	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var greeting string
	if err := workflow.ExecuteActivity(actx, Greet, order.Customer).Get(ctx, &greeting); err != nil {
		return "", err
	}
	stage = "greeted"

	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return "", err
	}
	stage = "waiting for approval"

	var approver string
	workflow.GetSignalChannel(ctx, "approve").Receive(ctx, &approver)
	stage = "approved by " + approver

	var packed string
	if err := workflow.ExecuteChildWorkflow(ctx, Pack, order.Items).Get(ctx, &packed); err != nil {
		return "", err
	}
	stage = "done"
	return fmt.Sprintf("%s %s, approved by %s", greeting, packed, approver), nil
}

func main() {
	if err := run(); err != nil {
		log.Printf("go sample FAILED: %v", err)
		os.Exit(1)
	}
	fmt.Println("go sample: all steps passed")
}

func run() error {
	address := envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233")
	c, err := client.Dial(client.Options{
		HostPort:  strings.TrimPrefix(strings.TrimPrefix(address, "http://"), "https://"),
		Namespace: envOr("TEMPORAL_NAMESPACE", "default"),
	})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", address, err)
	}
	defer c.Close()

	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	taskQueue := "go-tour-" + suffix
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(OrderWorkflow)
	w.RegisterWorkflow(Pack)
	w.RegisterActivity(Greet)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := tourWorkflow(ctx, c, taskQueue, "order-"+suffix); err != nil {
		return err
	}
	return tourSchedule(ctx, c, taskQueue, "schedule-"+suffix)
}

func tourWorkflow(ctx context.Context, c client.Client, taskQueue, id string) error {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue},
		OrderWorkflow, Order{Customer: "Ada", Items: []string{"tea"}})
	if err != nil {
		return fmt.Errorf("start workflow: %w", err)
	}
	fmt.Printf("started workflow %s (run %s)\n", run.GetID(), run.GetRunID())

	if err := waitForStage(ctx, c, id, "waiting for approval"); err != nil {
		return err
	}
	fmt.Println("query: the activity ran and the timer fired")

	handle, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: "add-item", Args: []interface{}{"scones"},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fmt.Errorf("update add-item: %w", err)
	}
	var count int
	if err := handle.Get(ctx, &count); err != nil {
		return fmt.Errorf("update result: %w", err)
	}
	if count != 2 {
		return fmt.Errorf("update returned %d items, want 2", count)
	}
	// A rejected update is an outcome, not a failed call: the handle carries the rejection.
	rejected, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: "add-item", Args: []interface{}{" "},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = rejected.Get(ctx, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "an item needs a name") {
		return fmt.Errorf("an empty item must be rejected by the validator, got %v", err)
	}
	fmt.Println("update: accepted one item (2 in all), the validator rejected an empty one")

	if err := c.SignalWorkflow(ctx, id, "", "approve", "Grace"); err != nil {
		return fmt.Errorf("signal approve: %w", err)
	}
	var result string
	if err := run.Get(ctx, &result); err != nil {
		return fmt.Errorf("workflow result: %w", err)
	}
	want := "Hello, Ada! packed 2 items, approved by Grace"
	if result != want {
		return fmt.Errorf("workflow returned %q, want %q", result, want)
	}
	fmt.Printf("signal + child workflow: result %q\n", result)

	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	if status := desc.GetWorkflowExecutionInfo().GetStatus(); status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return fmt.Errorf("describe says %v, want COMPLETED", status)
	}
	return nil
}

// waitForStage polls the "stage" query until the workflow reports the wanted stage.
func waitForStage(ctx context.Context, c client.Client, id, want string) error {
	var stage string
	for ctx.Err() == nil {
		value, err := c.QueryWorkflow(ctx, id, "", "stage")
		if err != nil {
			return fmt.Errorf("query stage: %w", err)
		}
		if err := value.Get(&stage); err != nil {
			return fmt.Errorf("decode stage: %w", err)
		}
		if stage == want {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the workflow stayed at stage %q, want %q", stage, want)
}

func tourSchedule(ctx context.Context, c client.Client, taskQueue, id string) error {
	schedules := c.ScheduleClient()
	handle, err := schedules.Create(ctx, client.ScheduleOptions{
		ID:     id,
		Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{ID: id + "-pack", Workflow: Pack, TaskQueue: taskQueue, Args: []interface{}{[]string{"jam"}}},
	})
	if err != nil {
		return fmt.Errorf("create schedule: %w", err)
	}
	defer func() { _ = handle.Delete(context.Background()) }()

	// The interval is an hour; trigger runs the action now.
	if err := handle.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return fmt.Errorf("trigger schedule: %w", err)
	}
	for ctx.Err() == nil {
		desc, err := handle.Describe(ctx)
		if err != nil {
			return fmt.Errorf("describe schedule: %w", err)
		}
		if recent := desc.Info.RecentActions; len(recent) > 0 {
			started := recent[0].StartWorkflowResult
			var result string
			if err := c.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &result); err != nil {
				return fmt.Errorf("scheduled run: %w", err)
			}
			if result != "packed 1 items" {
				return fmt.Errorf("scheduled run returned %q", result)
			}
			fmt.Printf("schedule: triggered run %s returned %q\n", started.WorkflowID, result)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the triggered schedule never started its workflow")
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
