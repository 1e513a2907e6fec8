// Workflow code runs in the SDK's deterministic sandbox; it reaches activities through proxies.
import * as wf from '@temporalio/workflow';
import type * as activities from './activities';

const { greet } = wf.proxyActivities<typeof activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

export interface Order {
  customer: string;
  items: string[];
}

export const stageQuery = wf.defineQuery<string>('stage');
export const approveSignal = wf.defineSignal<[string]>('approve');
export const addItemUpdate = wf.defineUpdate<number, [string]>('add-item');

// The child workflow: it counts the items it was given.
export async function pack(items: string[]): Promise<string> {
  return `packed ${items.length} items`;
}

// The tour workflow walks through every feature the sample shows.
export async function orderWorkflow(order: Order): Promise<string> {
  let stage = 'started';
  let approver: string | undefined;
  wf.setHandler(stageQuery, () => stage);
  wf.setHandler(approveSignal, (name) => {
    approver = name;
  });
  // An update adds an item; the validator rejects empty names before anything is recorded.
  wf.setHandler(
    addItemUpdate,
    (item) => {
      order.items.push(item);
      return order.items.length;
    },
    {
      validator: (item) => {
        if (item.trim() === '') throw new Error('an item needs a name');
      },
    },
  );

  const greeting = await greet(order.customer);
  stage = 'greeted';
  await wf.sleep('1 second');
  stage = 'waiting for approval';
  await wf.condition(() => approver !== undefined);
  stage = `approved by ${approver}`;
  const packed = await wf.executeChild(pack, { args: [order.items] });
  stage = 'done';
  return `${greeting} ${packed}, approved by ${approver}`;
}
