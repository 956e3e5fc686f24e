// @floodgate/core/testing: what a store author needs to prove a store correct.
export {
  describeStoreConformance,
  policiesFor,
  type StoreConformanceOptions,
  TestClock,
} from './conformance.js';
export { TRACE_VECTORS, type TraceStep, type TraceVector } from './vectors.js';
