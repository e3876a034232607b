// A global setup whose teardown removes what tests made outside their own temporary directories
// once the run is over and nothing is left in it: the folder of Task-visible scratch directories
// (task-visible-scratch.ts), and the cgroup groups of test processes that are gone (a run killed
// before its tests' own clean-up: test-cgroup-leftovers.ts). Used by the projects whose tests make
// those.
import { removeTaskVisibleScratchParent } from './task-visible-scratch.js';
import { removeDeadTestCgroupGroups } from './test-cgroup-leftovers.js';

export default function setup(): () => void {
  return () => {
    removeTaskVisibleScratchParent();
    removeDeadTestCgroupGroups();
  };
}
