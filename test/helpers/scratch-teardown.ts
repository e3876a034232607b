// A global setup whose teardown removes what tests made outside their own temporary directories
// once the run is over and nothing is left in it: the folder of Task-visible scratch directories
// (task-visible-scratch.ts). Used by the projects whose tests make those directories.
import { removeTaskVisibleScratchParent } from './task-visible-scratch.js';

export default function setup(): () => void {
  return removeTaskVisibleScratchParent;
}
