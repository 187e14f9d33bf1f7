import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';

/** Flips readiness to 503 as soon as shutdown starts, so load balancers drain us first. */
@Injectable()
export class ShutdownState implements BeforeApplicationShutdown {
  stopping = false;

  beforeApplicationShutdown(): void {
    this.stopping = true;
  }
}
