/** Frequency caps: lru-cache locally, Redis across a fleet. */
export {
  createLocalFrequencyStore,
  createRedisFrequencyStore,
  type FrequencyStore,
  type LocalFrequencyOptions,
  type LocalFrequencyStore,
  type RedisFrequencyOptions,
} from './freqcap.js';
